/* The functions a process enters while recording is on, for scripts/path-units. Linked into a
   build made with -finstrument-functions: every instrumented function's entry calls
   __cyg_profile_func_enter. SIGUSR1 starts a recording (an empty set); SIGUSR2 ends it and
   has the set written, one "address order" a line (the address after the executable's load
   address, the order of first entry), to the file
   named by STAMPEDE_TRACE_OUT. The signal handlers only flip flags: a thread of this file
   writes the set. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NI __attribute__((no_instrument_function))
enum { slots = 1 << 16 };

static _Atomic(uintptr_t) seen[slots]; /* an open-addressing set of entry addresses */
static atomic_uint first[slots];       /* the order in which each was first entered */
static atomic_uint entered;
static atomic_int recording;
static atomic_int dump_wanted;

NI void __cyg_profile_func_enter(void* fn, void* site) {
  (void)site;
  if (!atomic_load_explicit(&recording, memory_order_relaxed)) return;
  uintptr_t a = (uintptr_t)fn;
  for (uintptr_t i = 0, h = (a >> 4) * 2654435761u; i < slots; ++i) {
    _Atomic(uintptr_t)* s = &seen[(h + i) & (slots - 1)];
    uintptr_t cur = atomic_load_explicit(s, memory_order_relaxed);
    if (cur == a) return;
    if (cur == 0 && atomic_compare_exchange_strong(s, &cur, a)) {
      atomic_store(&first[(h + i) & (slots - 1)], atomic_fetch_add(&entered, 1));
      return;
    }
    if (cur == a) return;
  }
}

NI void __cyg_profile_func_exit(void* fn, void* site) {
  (void)fn;
  (void)site;
}

NI static void start_recording(int sig) {
  (void)sig;
  atomic_store(&recording, 1);
}

NI static void stop_recording(int sig) {
  (void)sig;
  atomic_store(&recording, 0);
  atomic_store(&dump_wanted, 1);
}

/* Where the executable is loaded: the first mapping of /proc/self/exe. */
NI static uintptr_t load_address(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  FILE* maps = fopen("/proc/self/maps", "r");
  if (!maps) return 0;
  char line[8192];
  uintptr_t base = 0;
  while (fgets(line, sizeof line, maps)) {
    if (strstr(line, exe)) {
      base = (uintptr_t)strtoull(line, NULL, 16);
      break;
    }
  }
  fclose(maps);
  return base;
}

NI static void* writer(void* arg) {
  (void)arg;
  const struct timespec tick = {0, 10 * 1000 * 1000};
  for (;;) {
    nanosleep(&tick, NULL);
    if (!atomic_exchange(&dump_wanted, 0)) continue;
    const char* path = getenv("STAMPEDE_TRACE_OUT");
    FILE* out = path ? fopen(path, "w") : NULL;
    uintptr_t base = load_address();
    for (int i = 0; i < slots; ++i) {
      uintptr_t a = atomic_exchange(&seen[i], 0);
      unsigned order = atomic_exchange(&first[i], 0);
      if (a != 0 && out) fprintf(out, "%#lx %u\n", (unsigned long)(a - base), order);
    }
    atomic_store(&entered, 0);
    if (out) fclose(out);
  }
  return NULL;
}

NI __attribute__((constructor)) static void install(void) {
  signal(SIGUSR1, start_recording);
  signal(SIGUSR2, stop_recording);
  pthread_t t;
  if (pthread_create(&t, NULL, writer, NULL) == 0) pthread_detach(t);
}
