/* px_sys: process-wide facts other C modules share (the interrupt trap). */
#ifndef PX_SYS_H
#define PX_SYS_H

/* Read end of the self-pipe written by the SIGINT/SIGTERM handler, or -1 when
 * no trap is installed. Pollers add it to their fd set to wake on Ctrl-C. */
int px_sys_interrupt_fd(void);
/* The signal number caught since the trap was installed, or 0. */
int px_sys_interrupted(void);

#endif
