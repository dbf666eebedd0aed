/*
 * px_wait: the interface px.exec.wait_any() multiplexes.
 *
 * A waitable is a full userdata whose memory starts with a struct
 * px_waitable and whose metatable has __px_waitable = true. Process handles
 * (px.exec) and HTTP requests (px.http) implement it, so the scheduler waits
 * for both in one poll(2).
 */
#ifndef PX_WAIT_H
#define PX_WAIT_H

#include <poll.h>
#include <stdint.h>

struct px_waitable;

struct px_waitable_ops {
  /* Add up to max pollfds; lower *deadline_ms (monotonic ms, -1 = none) if
   * the waitable has something to do at a time. Returns the count added. */
  int (*fill)(struct px_waitable *w, struct pollfd *fds, int max, int64_t *deadline_ms);
  /* Act on poll's results for the fds fill() added, and on the time. */
  void (*step)(struct px_waitable *w, const struct pollfd *fds, int n, int64_t now_ms);
  /* Non-zero once the result is ready. */
  int (*finished)(struct px_waitable *w);
};

struct px_waitable {
  const struct px_waitable_ops *ops;
};

/* Most fds a single waitable may add in fill(). */
#define PX_WAIT_MAX_FDS 8

int64_t px_wait_now_ms(void);

#endif
