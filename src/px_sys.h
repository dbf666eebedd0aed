/* px_sys: process-wide facts other C modules share (the interrupt trap). */
#ifndef PX_SYS_H
#define PX_SYS_H

/* Read end of the self-pipe written by the SIGINT/SIGTERM handler, or -1 when
 * no trap is installed. Pollers add it to their fd set to wake on Ctrl-C. */
int px_sys_interrupt_fd(void);
/* The signal number caught since the trap was installed, or 0. */
int px_sys_interrupted(void);

/* Children run in their own process groups, so a signal that kills phoenix
 * would not reach them. px.exec registers each live group here; when
 * SIGINT/SIGTERM/SIGHUP ends phoenix (untrapped, or the second one after
 * trap_interrupt) the same signal is sent to every registered group first. */
void px_sys_track_group(int pgid);
void px_sys_untrack_group(int pgid);
/* Installs that forwarding for signals still at their default action. */
void px_sys_guard_groups(void);

#endif
