/* The floor px.exec is measured against: posix_spawn + waitpid, nothing
 * else (no pipes, no process group, no poll).
 *   spawn_baseline serial N PROG           -> mean ms per spawn + wait, and
 *                                             this process's CPU ms per call
 *   spawn_baseline concurrent N PROG ARG   -> wall s to start N, wait all */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: spawn_baseline serial|concurrent N PROG [ARG]\n");
    return 2;
  }
  int n = atoi(argv[2]);
  char *args[] = {argv[3], argc > 4 ? argv[4] : NULL, NULL};
  if (n < 1) return 2;
  int concurrent = strcmp(argv[1], "concurrent") == 0;
  double t0 = now_ms();
  for (int i = 0; i < n; i++) {
    pid_t pid;
    int st;
    if (posix_spawnp(&pid, argv[3], NULL, NULL, args, environ) != 0) return 1;
    if (!concurrent && waitpid(pid, &st, 0) != pid) return 1;
  }
  if (concurrent) {
    while (wait(NULL) > 0) {
    }
    printf("%.3f\n", (now_ms() - t0) / 1e3);
  } else {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    printf("%.3f %.3f\n", (now_ms() - t0) / n, cpu / n);
  }
  return 0;
}
