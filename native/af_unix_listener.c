/*
 * af_unix_listener: listens on an AF_UNIX stream socket and hands every accepted connection to JavaScript, where
 * src/server/windows-socket.ts turns it into a stream.Duplex for grpc-js's connection injector.
 *
 * Why: on Windows, libuv maps "unix socket" paths to named pipes, so Node cannot listen on the AF_UNIX socket the
 * Secrets Store CSI driver dials there. Winsock has had AF_UNIX since Windows 10 1803, so we listen here instead.
 *
 * One source, three builds (see native/build.sh):
 *   - Windows (mingw-w64, linked against node.exe): the product.
 *   - Linux (POSIX sockets): so that all of the logic below is tested natively with real AF_UNIX sockets.
 *   - -DAF_UNIX_LISTENER_TCP_TEST: the same code, but listening on 127.0.0.1 with an ephemeral port, whose address
 *     it writes into the file at the socket path. Only for tests: Wine has no AF_UNIX, so this is the variant that
 *     lets the Windows build run (in node.exe under Wine) at all. Everything except the address family is shared.
 *
 * Threads and ownership:
 *   - One accept thread per listener; two threads per connection: a reader (recv, hand one chunk to JS, then wait
 *     until JS asks for more: that is how backpressure reaches the socket) and a writer (sends the one chunk JS
 *     handed over, then reports completion), so the event loop never waits on a socket.
 *   - Threads reach JavaScript only through one thread-safe function (TSFN) per listener.
 *   - A socket is closed by the last of its threads to leave, never by another thread, so a socket handle cannot be
 *     reused while a thread still uses it. To make threads leave promptly, sockets are non-blocking and every wait
 *     is a poll/select with a short tick after which the thread looks at its "closing" flag. On Linux, shutdown()
 *     also wakes the wait at once; on Windows, a blocking call in another thread can only be interrupted by closing
 *     the handle (which would race with handle reuse), so there the tick is what bounds the delay.
 *   - Structures are reference counted: threads, pending events and the JS wrapper objects each hold a reference.
 */
#define NAPI_VERSION 8
#ifndef _WIN32
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC */
#endif

#include <node_api.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <windows.h>
#include <afunix.h>
typedef SOCKET sock_t;
#define SOCK_INVALID INVALID_SOCKET
#define SHUTDOWN_WRITE SD_SEND
#define SHUTDOWN_BOTH SD_BOTH
#define SEND_FLAGS 0
typedef SRWLOCK lock_t;
typedef CONDITION_VARIABLE cond_t;
typedef DWORD thread_result;
#define THREAD_CALL WINAPI
#define THREAD_DONE 0
#else
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
typedef int sock_t;
#define SOCK_INVALID (-1)
#define SHUTDOWN_WRITE SHUT_WR
#define SHUTDOWN_BOTH SHUT_RDWR
#define SEND_FLAGS MSG_NOSIGNAL /* a peer that went away must give EPIPE, never SIGPIPE */
typedef pthread_mutex_t lock_t;
typedef pthread_cond_t cond_t;
typedef void *thread_result;
#define THREAD_CALL
#define THREAD_DONE NULL
#endif

typedef thread_result(THREAD_CALL *thread_entry)(void *);

#ifdef AF_UNIX_LISTENER_TCP_TEST
#define FAMILY_NAME "tcp-loopback"
#define NO_FAMILY_HINT " (this system has no IPv4 sockets)"
#else
#define FAMILY_NAME "unix"
#define NO_FAMILY_HINT                                                                                               \
  " (this system has no AF_UNIX sockets: Windows needs Windows 10 1803 / Windows Server 2019 or later; Wine does not " \
  "implement them)"
#endif

/* One recv; gRPC frames are small, a 3 MiB response goes the other way. */
#define READ_CHUNK (64 * 1024)
/* One send call at most; a larger write is sent in several calls. */
#define SEND_CHUNK (1024 * 1024)
/* The longest a thread waits on a socket before it looks at its closing flag again (see the header comment). */
#define WAIT_TICK_MS 250
/* After EMFILE and the like, wait before accepting again instead of spinning. */
#define ACCEPT_RETRY_MS 200
/* Our threads only hold a few frames and no big buffers on the stack. */
#define THREAD_STACK (256 * 1024)
/* sun_path is 108 bytes on Linux and Windows, including the terminating NUL. */
#define SOCKET_PATH_MAX 108
/* Longest path we accept as an argument (the TCP test variant writes a port file there). */
#define PATH_ARG_MAX 1024

/* Our own error codes; OS codes (errno, WSA*, Win32) are positive. */
#define ERR_CANCELED (-1001)
#define ERR_NOT_A_SOCKET_FILE (-1002)
#define ERR_PATH_TOO_LONG (-1003)
#define ERR_PATH_NOT_ASCII (-1004)
#define ERR_NO_MEMORY (-1005)
#define ERR_PORT_FILE (-1006)

typedef struct {
  int code;            /* OS error or ERR_*; 0 = no error */
  const char *syscall; /* static string: which call failed */
} failure_t;

typedef enum { WAIT_READ, WAIT_WRITE, WAIT_CONNECT } wait_mode;

/* ---------------------------------------------------------------------------------------------------------------- */
/* Platform layer: locks, threads, sockets, errors. The only place with #ifdef _WIN32 besides the listener setup.    */

#ifdef _WIN32
static void lock_init(lock_t *l) { InitializeSRWLock(l); }
static void lock_destroy(lock_t *l) { (void)l; }
static void lock_acquire(lock_t *l) { AcquireSRWLockExclusive(l); }
static void lock_release(lock_t *l) { ReleaseSRWLockExclusive(l); }
static void cond_init(cond_t *c) { InitializeConditionVariable(c); }
static void cond_destroy(cond_t *c) { (void)c; }
static void cond_wait(cond_t *c, lock_t *l) { SleepConditionVariableSRW(c, l, INFINITE, 0); }
static void cond_broadcast(cond_t *c) { WakeAllConditionVariable(c); }
static void sleep_ms(unsigned ms) { Sleep(ms); }
static int socket_error(void) { return WSAGetLastError(); }
static int error_is_transient(int e) { return e == WSAEWOULDBLOCK || e == WSAEINTR; }
static int error_is_resource_limit(int e) { return e == WSAEMFILE || e == WSAENOBUFS; }
static int error_is_not_connected(int e) { return e == WSAENOTCONN; }
static int error_is_no_family(int e) { return e == WSAEAFNOSUPPORT || e == WSAEPROTONOSUPPORT; }
static int error_is_connect_pending(int e) { return e == WSAEWOULDBLOCK || e == WSAEINPROGRESS; }
static void sock_close(sock_t s) { closesocket(s); }

/* Non-blocking, and not inherited by child processes (Windows sockets are inheritable by default). */
static int sock_prepare(sock_t s) {
  u_long on = 1;
  if (ioctlsocket(s, FIONBIO, &on) != 0) return WSAGetLastError();
  SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  return 0;
}

static int thread_start(thread_entry entry, void *arg) {
  HANDLE h = CreateThread(NULL, THREAD_STACK, entry, arg, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
  if (h == NULL) return (int)GetLastError();
  CloseHandle(h); /* detached: the thread cleans up after itself */
  return 0;
}

/* 1 = ready, 0 = tick elapsed, -1 = error in *err. Windows' select takes handles, not a bitmap: any value works.
 * A failed non-blocking connect shows in the exception set only, hence WAIT_CONNECT. */
static int wait_io(sock_t s, wait_mode mode, int *err) {
  fd_set set, failed;
  struct timeval tv = {0, WAIT_TICK_MS * 1000};
  FD_ZERO(&set);
  FD_SET(s, &set);
  FD_ZERO(&failed);
  FD_SET(s, &failed);
  int r = select(0, mode == WAIT_READ ? &set : NULL, mode == WAIT_READ ? NULL : &set,
                 mode == WAIT_CONNECT ? &failed : NULL, &tv);
  if (r == SOCKET_ERROR) {
    *err = WSAGetLastError();
    return error_is_transient(*err) ? 0 : -1;
  }
  return r > 0;
}

static const char *error_name(int code) {
  switch (code) {
    case WSAEAFNOSUPPORT: return "WSAEAFNOSUPPORT";
    case WSAEPROTONOSUPPORT: return "WSAEPROTONOSUPPORT";
    case WSAEADDRINUSE: return "WSAEADDRINUSE";
    case WSAEADDRNOTAVAIL: return "WSAEADDRNOTAVAIL";
    case WSAEACCES: return "WSAEACCES";
    case WSAECONNRESET: return "WSAECONNRESET";
    case WSAECONNABORTED: return "WSAECONNABORTED";
    case WSAENOTCONN: return "WSAENOTCONN";
    case WSAESHUTDOWN: return "WSAESHUTDOWN";
    case WSAEMFILE: return "WSAEMFILE";
    case WSAENOBUFS: return "WSAENOBUFS";
    case WSAEINVAL: return "WSAEINVAL";
    case WSAENOTSOCK: return "WSAENOTSOCK";
    case WSAENETDOWN: return "WSAENETDOWN";
    case WSAECONNREFUSED: return "WSAECONNREFUSED";
    case WSAETIMEDOUT: return "WSAETIMEDOUT";
    case WSANOTINITIALISED: return "WSANOTINITIALISED";
    case ERROR_FILE_NOT_FOUND: return "ERROR_FILE_NOT_FOUND";
    case ERROR_PATH_NOT_FOUND: return "ERROR_PATH_NOT_FOUND";
    case ERROR_ACCESS_DENIED: return "ERROR_ACCESS_DENIED";
    case ERROR_SHARING_VIOLATION: return "ERROR_SHARING_VIOLATION";
    default: return NULL;
  }
}

static void error_text(int code, char *buf, size_t size) {
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)code, 0, buf,
                           (DWORD)size, NULL);
  if (n == 0) {
    snprintf(buf, size, "error %d", code);
    return;
  }
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '.')) buf[--n] = 0;
}
#else
static void lock_init(lock_t *l) { pthread_mutex_init(l, NULL); }
static void lock_destroy(lock_t *l) { pthread_mutex_destroy(l); }
static void lock_acquire(lock_t *l) { pthread_mutex_lock(l); }
static void lock_release(lock_t *l) { pthread_mutex_unlock(l); }
static void cond_init(cond_t *c) { pthread_cond_init(c, NULL); }
static void cond_destroy(cond_t *c) { pthread_cond_destroy(c); }
static void cond_wait(cond_t *c, lock_t *l) { pthread_cond_wait(c, l); }
static void cond_broadcast(cond_t *c) { pthread_cond_broadcast(c); }
static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
static int socket_error(void) { return errno; }
static int error_is_transient(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED; }
static int error_is_resource_limit(int e) { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }
static int error_is_not_connected(int e) { return e == ENOTCONN; }
static int error_is_no_family(int e) { return e == EAFNOSUPPORT || e == EPROTONOSUPPORT; }
/* Not EAGAIN: for AF_UNIX that means the listener's backlog is full, a failure. */
static int error_is_connect_pending(int e) { return e == EINPROGRESS; }
static void sock_close(sock_t s) { close(s); }

/* Sockets are created with SOCK_CLOEXEC / SOCK_NONBLOCK; this only covers the listening socket. */
static int sock_prepare(sock_t s) {
  int flags = fcntl(s, F_GETFL);
  if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0) return errno;
  return 0;
}

/* Detached, small stack, and with all signals blocked so that the process's signals (SIGTERM, SIGINT) keep being
 * handled by Node's own thread and never interrupt ours. */
static int thread_start(thread_entry entry, void *arg) {
  pthread_attr_t attr;
  pthread_t thread;
  sigset_t all, previous;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return rc;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, THREAD_STACK);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  rc = pthread_create(&thread, &attr, entry, arg);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}

/* 1 = ready, 0 = tick elapsed, -1 = error in *err. poll, not select: a descriptor may exceed FD_SETSIZE. */
static int wait_io(sock_t s, wait_mode mode, int *err) {
  struct pollfd p;
  p.fd = s;
  p.events = mode == WAIT_READ ? POLLIN : POLLOUT;
  p.revents = 0;
  int r = poll(&p, 1, WAIT_TICK_MS);
  if (r < 0) {
    *err = errno;
    return errno == EINTR ? 0 : -1;
  }
  return r > 0;
}

static const char *error_name(int code) {
  switch (code) {
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EROFS: return "EROFS";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case EPIPE: return "EPIPE";
    case ENOTCONN: return "ENOTCONN";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    case EBADF: return "EBADF";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAGAIN: return "EAGAIN";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return NULL;
  }
}

/* Called on the main thread only (strerror's buffer is shared). */
static void error_text(int code, char *buf, size_t size) { snprintf(buf, size, "%s", strerror(code)); }
#endif

/* ---------------------------------------------------------------------------------------------------------------- */
/* Process-wide bookkeeping: every listener (for the environment cleanup hook) and counters for tests.               */

typedef struct hub hub_t;
typedef struct conn conn_t;

static lock_t g_lock; /* guards g_hubs and the counters */
static hub_t *g_hubs;
static long g_listeners, g_connections, g_threads; /* open listening sockets, open connections, running threads */

static void count(long *counter, long delta) {
  lock_acquire(&g_lock);
  *counter += delta;
  lock_release(&g_lock);
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Events: everything a thread tells JavaScript goes through the listener's TSFN as one of these.                   */

typedef enum {
  EV_CONNECTION,      /* a new connection: JS answers with the function that receives its events */
  EV_LISTENER_ERROR,  /* accept failed but the listener goes on (e.g. out of descriptors) */
  EV_LISTENER_CLOSED, /* the listening socket is closed and its file removed; failure.code != 0 if it had to stop */
  EV_DATA,            /* bytes read */
  EV_END,             /* the peer shut down its sending side */
  EV_READ_ERROR,      /* reading failed: the connection is broken */
  EV_WRITTEN,         /* the pending write completed (failure.code == 0) or failed */
  EV_CLOSED           /* both threads left and the socket is closed: the last event of a connection */
} event_kind;

typedef struct {
  event_kind kind;
  conn_t *conn; /* holds a reference; NULL for listener events */
  failure_t failure;
  char *data; /* EV_DATA: bytes owned by the event */
  size_t length;
} event_t;

/* ---------------------------------------------------------------------------------------------------------------- */
/* The listener ("hub": the threads of all its connections post through its TSFN).                                   */

struct hub {
  lock_t lock; /* guards the fields up to `conns` */
  int refs;    /* the TSFN, the accept thread, the JS object, each connection */
  int tsfn_alive; /* cleared when the TSFN is finalized or closing: nobody may touch `tsfn` afterwards */
  napi_threadsafe_function tsfn;
  sock_t fd;     /* the listening socket, or the socket being connected (until it becomes a connection) */
  int fd_closed;
  int closing;
  int listening; /* set once: a listener (else a dialler, see connect()) */
  conn_t *conns; /* connections whose threads still run */
  napi_env env;  /* set once */
  char path[PATH_ARG_MAX];
  hub_t *next; /* g_hubs, guarded by g_lock */
};

struct conn {
  hub_t *hub;
  lock_t lock; /* guards the fields up to `write_pending` */
  cond_t cond;
  int refs;    /* each running thread, the JS object, each pending event */
  int threads; /* I/O threads still running: the last one closes fd */
  sock_t fd;
  int fd_closed;
  int closing;   /* destroy requested: both threads leave */
  int want_read; /* JS asked for data: the reader may deliver one chunk */
  const char *write_data;
  size_t write_length;
  int write_pending;
  conn_t *prev, *next; /* hub->conns, guarded by hub->lock */
  /* Main thread only. */
  napi_ref handler;      /* JS function for this connection's events, until EV_CLOSED */
  napi_ref write_buffer; /* keeps the Buffer being written alive until EV_WRITTEN */
};

static void hub_unref(hub_t *hub) {
  lock_acquire(&hub->lock);
  int last = --hub->refs == 0;
  lock_release(&hub->lock);
  if (!last) return;
  lock_acquire(&g_lock);
  for (hub_t **p = &g_hubs; *p; p = &(*p)->next) {
    if (*p == hub) {
      *p = hub->next;
      break;
    }
  }
  lock_release(&g_lock);
  lock_destroy(&hub->lock);
  free(hub);
}

static void conn_ref(conn_t *c) {
  lock_acquire(&c->lock);
  c->refs++;
  lock_release(&c->lock);
}

static void conn_unref(conn_t *c) {
  lock_acquire(&c->lock);
  int last = --c->refs == 0;
  lock_release(&c->lock);
  if (!last) return;
  hub_t *hub = c->hub;
  cond_destroy(&c->cond);
  lock_destroy(&c->lock);
  free(c);
  hub_unref(hub);
}

static void event_free(event_t *ev) {
  if (ev->conn) conn_unref(ev->conn);
  free(ev->data);
  free(ev);
}

/* Hands an event to the main thread; the event is freed here if that is no longer possible. */
static void hub_post(hub_t *hub, event_t *ev) {
  int posted = 0;
  lock_acquire(&hub->lock);
  if (hub->tsfn_alive) {
    napi_status status = napi_call_threadsafe_function(hub->tsfn, ev, napi_tsfn_nonblocking);
    posted = status == napi_ok;
    /* napi_closing: the environment is shutting down and the TSFN goes away without waiting for us. */
    if (status == napi_closing) hub->tsfn_alive = 0;
  }
  lock_release(&hub->lock);
  if (!posted) event_free(ev);
}

/* Posts an event without data. If even this small allocation fails the event is lost: for EV_CLOSED that leaves the
 * JS side of one connection uncollected, which beats aborting the process. */
static void post_simple(hub_t *hub, event_kind kind, conn_t *conn, failure_t failure) {
  event_t *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->kind = kind;
  ev->failure = failure;
  if (conn) {
    conn_ref(conn);
    ev->conn = conn;
  }
  hub_post(hub, ev);
}

/* Every thread that posts holds one acquisition of the TSFN, so it outlives them (except at environment teardown). */
static int hub_acquire_thread(hub_t *hub) {
  lock_acquire(&hub->lock);
  int ok = hub->tsfn_alive && napi_acquire_threadsafe_function(hub->tsfn) == napi_ok;
  lock_release(&hub->lock);
  return ok;
}

static void hub_release_thread(hub_t *hub) {
  lock_acquire(&hub->lock);
  if (hub->tsfn_alive) napi_release_threadsafe_function(hub->tsfn, napi_tsfn_release);
  lock_release(&hub->lock);
}

static void conn_request_close(conn_t *c) {
  lock_acquire(&c->lock);
  if (!c->closing) {
    c->closing = 1;
    /* Wakes a thread waiting in poll at once on Linux; on Windows the wait tick does it. */
    if (!c->fd_closed) shutdown(c->fd, SHUTDOWN_BOTH);
    cond_broadcast(&c->cond);
  }
  lock_release(&c->lock);
}

/* Called with hub->lock held. */
static void hub_request_close_locked(hub_t *hub) {
  if (hub->closing) return;
  hub->closing = 1;
#ifndef _WIN32
  /* Wakes the accept thread's poll at once (Linux); Windows relies on the tick. */
  if (!hub->fd_closed) shutdown(hub->fd, SHUTDOWN_BOTH);
#endif
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Connection threads.                                                                                               */

static int conn_is_closing(conn_t *c) {
  lock_acquire(&c->lock);
  int closing = c->closing;
  lock_release(&c->lock);
  return closing;
}

/* The connection has no thread left: close the socket, forget it, and tell JS (EV_CLOSED is its last event). */
static void conn_detach(conn_t *c) {
  hub_t *hub = c->hub;
  lock_acquire(&c->lock);
  if (!c->fd_closed) {
    sock_close(c->fd);
    c->fd_closed = 1;
  }
  lock_release(&c->lock);
  lock_acquire(&hub->lock);
  if (c->prev) c->prev->next = c->next;
  else if (hub->conns == c) hub->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  lock_release(&hub->lock);
  count(&g_connections, -1);
  post_simple(hub, EV_CLOSED, c, (failure_t){0, NULL});
}

/* A thread leaves: the last one detaches the connection, then each gives back its TSFN acquisition (after its last
 * post, so the TSFN outlives it). */
static void conn_thread_done(conn_t *c) {
  hub_t *hub = c->hub;
  lock_acquire(&c->lock);
  int last = --c->threads == 0;
  lock_release(&c->lock);
  if (last) conn_detach(c);
  count(&g_threads, -1);
  hub_release_thread(hub);
  conn_unref(c);
}

static thread_result THREAD_CALL reader_main(void *arg) {
  conn_t *c = arg;
  failure_t failure = {0, NULL};
  char *buf = malloc(READ_CHUNK);
  if (!buf) failure = (failure_t){ERR_NO_MEMORY, "malloc"};
  while (!failure.code) {
    lock_acquire(&c->lock);
    while (!c->closing && !c->want_read) cond_wait(&c->cond, &c->lock);
    int closing = c->closing;
    lock_release(&c->lock);
    if (closing) break;

    int err = 0;
    int ready = wait_io(c->fd, WAIT_READ, &err);
    if (ready < 0) {
      failure = (failure_t){err, "poll"};
      break;
    }
    if (ready == 0) continue;

    int n = (int)recv(c->fd, buf, READ_CHUNK, 0);
    if (n > 0) {
      event_t *ev = calloc(1, sizeof *ev);
      char *data = malloc((size_t)n);
      if (!ev || !data) {
        free(ev);
        free(data);
        failure = (failure_t){ERR_NO_MEMORY, "malloc"};
        break;
      }
      memcpy(data, buf, (size_t)n);
      /* One chunk per request: JS asks again (Readable._read) only while push() keeps returning true. */
      lock_acquire(&c->lock);
      c->want_read = 0;
      c->refs++;
      lock_release(&c->lock);
      ev->kind = EV_DATA;
      ev->conn = c;
      ev->data = data;
      ev->length = (size_t)n;
      hub_post(c->hub, ev);
    } else if (n == 0) {
      failure_t none = {0, NULL};
      post_simple(c->hub, EV_END, c, none);
      break; /* half-close: the writer stays until JS destroys the connection */
    } else {
      err = socket_error();
      if (error_is_transient(err)) continue;
      failure = (failure_t){err, "recv"};
    }
  }
  /* After a destroy, failures are the destroy's own doing: not worth an event. */
  if (failure.code && !conn_is_closing(c)) post_simple(c->hub, EV_READ_ERROR, c, failure);
  free(buf);
  conn_thread_done(c);
  return THREAD_DONE;
}

static failure_t send_all(conn_t *c, const char *data, size_t length) {
  size_t sent = 0;
  while (sent < length) {
    if (conn_is_closing(c)) return (failure_t){ERR_CANCELED, "write"};
    int err = 0;
    int ready = wait_io(c->fd, WAIT_WRITE, &err);
    if (ready < 0) return (failure_t){err, "poll"};
    if (ready == 0) continue;
    size_t chunk = length - sent < SEND_CHUNK ? length - sent : SEND_CHUNK;
    int n = (int)send(c->fd, data + sent, (int)chunk, SEND_FLAGS);
    if (n >= 0) {
      sent += (size_t)n;
      continue;
    }
    err = socket_error();
    if (!error_is_transient(err)) return (failure_t){err, "send"};
  }
  return (failure_t){0, NULL};
}

static thread_result THREAD_CALL writer_main(void *arg) {
  conn_t *c = arg;
  for (;;) {
    lock_acquire(&c->lock);
    while (!c->closing && !c->write_pending) cond_wait(&c->cond, &c->lock);
    if (!c->write_pending) { /* closing, nothing left to report */
      lock_release(&c->lock);
      break;
    }
    const char *data = c->write_data;
    size_t length = c->write_length;
    lock_release(&c->lock);

    failure_t result = send_all(c, data, length);

    lock_acquire(&c->lock);
    c->write_pending = 0;
    c->write_data = NULL;
    lock_release(&c->lock);
    post_simple(c->hub, EV_WRITTEN, c, result);
  }
  conn_thread_done(c);
  return THREAD_DONE;
}

/* Starts one I/O thread; if it cannot start, it counts as a thread that left at once. Returns 0, the OS error, or
 * ERR_CANCELED when the listener's TSFN is already gone (the environment is shutting down). */
static int conn_spawn(conn_t *c, thread_entry entry) {
  if (!hub_acquire_thread(c->hub)) return ERR_CANCELED;
  lock_acquire(&c->lock);
  c->threads++;
  c->refs++;
  lock_release(&c->lock);
  count(&g_threads, 1);
  int rc = thread_start(entry, c);
  if (rc != 0) conn_thread_done(c);
  return rc;
}

/* The accept thread got a socket: wrap it, start its threads, tell JS. */
static void accept_one(hub_t *hub, sock_t s) {
  conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    sock_close(s);
    post_simple(hub, EV_LISTENER_ERROR, NULL, (failure_t){ERR_NO_MEMORY, "malloc"});
    return;
  }
  lock_init(&c->lock);
  cond_init(&c->cond);
  c->hub = hub;
  c->fd = s;
  c->refs = 1; /* ours until it goes with EV_CONNECTION */
  lock_acquire(&hub->lock);
  hub->refs++;
  c->next = hub->conns;
  if (hub->conns) hub->conns->prev = c;
  hub->conns = c;
  lock_release(&hub->lock);
  count(&g_connections, 1);

  int rc = conn_spawn(c, reader_main);
  if (rc == ERR_CANCELED) {
    conn_detach(c); /* no thread ever started */
  } else if (rc == 0) {
    rc = conn_spawn(c, writer_main);
    if (rc != 0) conn_request_close(c); /* the reader must leave too */
  }
  if (rc != 0) {
    if (rc != ERR_CANCELED) post_simple(hub, EV_LISTENER_ERROR, NULL, (failure_t){rc, "thread_create"});
    conn_unref(c);
    return;
  }
  event_t *ev = calloc(1, sizeof *ev);
  if (!ev) {
    conn_request_close(c);
    conn_unref(c);
    return;
  }
  ev->kind = EV_CONNECTION;
  ev->conn = c; /* our reference moves into the event */
  hub_post(hub, ev);
}

static thread_result THREAD_CALL accept_main(void *arg) {
  hub_t *hub = arg;
  failure_t fatal = {0, NULL};
  for (;;) {
    lock_acquire(&hub->lock);
    int closing = hub->closing;
    lock_release(&hub->lock);
    if (closing) break;

    int err = 0;
    int ready = wait_io(hub->fd, WAIT_READ, &err);
    if (ready < 0) {
      fatal = (failure_t){err, "poll"};
      break;
    }
    if (ready == 0) continue;
#ifdef _WIN32
    sock_t s = accept(hub->fd, NULL, NULL);
#else
    sock_t s = accept4(hub->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
#endif
    if (s == SOCK_INVALID) {
      err = socket_error();
      if (error_is_transient(err)) continue;
      lock_acquire(&hub->lock);
      closing = hub->closing;
      lock_release(&hub->lock);
      if (closing) break; /* shutdown() of the listening socket makes accept fail: that is our own close */
      if (error_is_resource_limit(err)) {
        post_simple(hub, EV_LISTENER_ERROR, NULL, (failure_t){err, "accept"});
        sleep_ms(ACCEPT_RETRY_MS);
        continue;
      }
      fatal = (failure_t){err, "accept"};
      break;
    }
#ifdef _WIN32
    err = sock_prepare(s);
    if (err != 0) {
      sock_close(s);
      post_simple(hub, EV_LISTENER_ERROR, NULL, (failure_t){err, "ioctlsocket"});
      continue;
    }
#endif
    accept_one(hub, s);
  }

  lock_acquire(&hub->lock);
  sock_close(hub->fd);
  hub->fd_closed = 1;
  hub->closing = 1;
  lock_release(&hub->lock);
  count(&g_listeners, -1);
  /* The socket file (or the TCP test variant's port file) goes with the listener, as grpc-server.ts does on Linux. */
#ifdef _WIN32
  DeleteFileA(hub->path);
#else
  unlink(hub->path);
#endif
  post_simple(hub, EV_LISTENER_CLOSED, NULL, fatal);
  count(&g_threads, -1);
  hub_release_thread(hub);
  hub_unref(hub);
  return THREAD_DONE;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Opening the listening socket (main thread; quick local calls, like libuv's own pipe bind).                       */

/* A stale socket from an earlier run is replaced; anything else at the path is left alone. */
static failure_t remove_stale(const char *path) {
#ifdef _WIN32
  DWORD attributes = GetFileAttributesA(path);
  if (attributes == INVALID_FILE_ATTRIBUTES) {
    DWORD e = GetLastError();
    if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) return (failure_t){0, NULL};
    return (failure_t){(int)e, "GetFileAttributes"};
  }
#ifdef AF_UNIX_LISTENER_TCP_TEST
  int replaceable = !(attributes & FILE_ATTRIBUTE_DIRECTORY); /* our own port file */
#else
  /* Windows represents an AF_UNIX socket file as a reparse point. */
  int replaceable = (attributes & FILE_ATTRIBUTE_REPARSE_POINT) && !(attributes & FILE_ATTRIBUTE_DIRECTORY);
#endif
  if (!replaceable) return (failure_t){ERR_NOT_A_SOCKET_FILE, "bind"};
  if (!DeleteFileA(path)) {
    DWORD e = GetLastError();
    if (e != ERROR_FILE_NOT_FOUND) return (failure_t){(int)e, "DeleteFile"};
  }
#else
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return (failure_t){0, NULL};
    return (failure_t){errno, "lstat"};
  }
#ifdef AF_UNIX_LISTENER_TCP_TEST
  int replaceable = S_ISREG(st.st_mode); /* our own port file */
#else
  int replaceable = S_ISSOCK(st.st_mode);
#endif
  if (!replaceable) return (failure_t){ERR_NOT_A_SOCKET_FILE, "bind"};
  if (unlink(path) != 0 && errno != ENOENT) return (failure_t){errno, "unlink"};
#endif
  return (failure_t){0, NULL};
}

static void remove_file(const char *path) {
#ifdef _WIN32
  DeleteFileA(path);
#else
  unlink(path);
#endif
}

#ifdef AF_UNIX_LISTENER_TCP_TEST
/* Publishes "127.0.0.1:<port>\n" at the socket path; written aside and renamed so a reader never sees half of it. */
static failure_t write_port_file(const char *path, unsigned port) {
  char tmp[PATH_ARG_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return (failure_t){ERR_PORT_FILE, "fopen"};
  int ok = fprintf(f, "127.0.0.1:%u\n", port) > 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok) {
    remove_file(tmp);
    return (failure_t){ERR_PORT_FILE, "fwrite"};
  }
#ifdef _WIN32
  if (!MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING)) {
    DWORD e = GetLastError();
    remove_file(tmp);
    return (failure_t){(int)e, "MoveFileEx"};
  }
#else
  if (rename(tmp, path) != 0) {
    int e = errno;
    remove_file(tmp);
    return (failure_t){e, "rename"};
  }
#endif
  return (failure_t){0, NULL};
}
#endif

static failure_t open_listener(const char *path, sock_t *out) {
  size_t length = strlen(path);
#ifdef _WIN32
  /* sun_path is a narrow string; keep to ASCII so that its code page cannot matter. */
  for (size_t i = 0; i < length; i++) {
    if ((unsigned char)path[i] >= 0x80) return (failure_t){ERR_PATH_NOT_ASCII, "bind"};
  }
#endif
#ifdef AF_UNIX_LISTENER_TCP_TEST
  int family = AF_INET;
  (void)length;
#else
  int family = AF_UNIX;
  if (length >= SOCKET_PATH_MAX) return (failure_t){ERR_PATH_TOO_LONG, "bind"};
#endif
#ifdef _WIN32
  sock_t s = socket(family, SOCK_STREAM, 0);
#else
  sock_t s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
  if (s == SOCK_INVALID) return (failure_t){socket_error(), "socket"};

  failure_t failure = remove_stale(path);
  if (failure.code) {
    sock_close(s);
    return failure;
  }

#ifdef AF_UNIX_LISTENER_TCP_TEST
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
#else
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  memcpy(address.sun_path, path, length);
#endif
  int created_file = 0;
  if (bind(s, (struct sockaddr *)&address, sizeof address) != 0) {
    failure = (failure_t){socket_error(), "bind"};
    goto fail;
  }
#ifndef AF_UNIX_LISTENER_TCP_TEST
  created_file = 1;
#ifndef _WIN32
  /* Only the driver (root) may connect. Before listen(), nobody can connect yet, so there is no window. */
  if (chmod(path, 0600) != 0) {
    failure = (failure_t){errno, "chmod"};
    goto fail;
  }
#endif
#endif
  if (listen(s, SOMAXCONN) != 0) {
    failure = (failure_t){socket_error(), "listen"};
    goto fail;
  }
  int err = sock_prepare(s);
  if (err != 0) {
    failure = (failure_t){err, "ioctlsocket"};
    goto fail;
  }
#ifdef AF_UNIX_LISTENER_TCP_TEST
  {
    struct sockaddr_in bound;
#ifdef _WIN32
    int bound_length = sizeof bound;
#else
    socklen_t bound_length = sizeof bound;
#endif
    if (getsockname(s, (struct sockaddr *)&bound, &bound_length) != 0) {
      failure = (failure_t){socket_error(), "getsockname"};
      goto fail;
    }
    failure = write_port_file(path, ntohs(bound.sin_port));
    if (failure.code) goto fail;
    created_file = 1;
  }
#endif
  *out = s;
  return (failure_t){0, NULL};

fail:
  sock_close(s);
  if (created_file) remove_file(path);
  return failure;
}

#ifdef AF_UNIX_LISTENER_TCP_TEST
/* The address a listener of the TCP test build published at the path. */
static failure_t read_port_file(const char *path, unsigned *port) {
  FILE *f = fopen(path, "rb");
  if (!f) return (failure_t){ERR_PORT_FILE, "fopen"};
  unsigned value = 0;
  int matched = fscanf(f, "127.0.0.1:%u", &value);
  fclose(f);
  if (matched != 1 || value == 0 || value > 65535) return (failure_t){ERR_PORT_FILE, "read"};
  *port = value;
  return (failure_t){0, NULL};
}
#endif

/* Starts a non-blocking connect; connect_main waits until the socket is writable (at once if it connected at once). */
static failure_t start_connect(const char *path, sock_t *out) {
  size_t length = strlen(path);
#ifdef _WIN32
  for (size_t i = 0; i < length; i++) {
    if ((unsigned char)path[i] >= 0x80) return (failure_t){ERR_PATH_NOT_ASCII, "connect"};
  }
#endif
#ifdef AF_UNIX_LISTENER_TCP_TEST
  (void)length;
  unsigned port = 0;
  failure_t failure = read_port_file(path, &port);
  if (failure.code) return failure;
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons((unsigned short)port);
  int family = AF_INET;
#else
  if (length >= SOCKET_PATH_MAX) return (failure_t){ERR_PATH_TOO_LONG, "connect"};
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  memcpy(address.sun_path, path, length);
  int family = AF_UNIX;
#endif
#ifdef _WIN32
  sock_t s = socket(family, SOCK_STREAM, 0);
#else
  sock_t s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
  if (s == SOCK_INVALID) return (failure_t){socket_error(), "socket"};
  int err = sock_prepare(s);
  if (err != 0) {
    sock_close(s);
    return (failure_t){err, "ioctlsocket"};
  }
  if (connect(s, (struct sockaddr *)&address, sizeof address) != 0) {
    err = socket_error();
    if (!error_is_connect_pending(err)) {
      sock_close(s);
      return (failure_t){err, "connect"};
    }
  }
  *out = s;
  return (failure_t){0, NULL};
}

/* The dialler's thread: waits for the connect to complete (or for a cancel), then hands the socket over to the same
 * connection machinery as an accepted one. 'close' follows, with the failure if there was one. */
static thread_result THREAD_CALL connect_main(void *arg) {
  hub_t *hub = arg;
  failure_t failure = {0, NULL};
  lock_acquire(&hub->lock);
  sock_t s = hub->fd;
  lock_release(&hub->lock);
  for (;;) {
    lock_acquire(&hub->lock);
    int closing = hub->closing;
    lock_release(&hub->lock);
    if (closing) {
      failure = (failure_t){ERR_CANCELED, "connect"};
      break;
    }
    int err = 0;
    int ready = wait_io(s, WAIT_CONNECT, &err);
    if (ready < 0) {
      failure = (failure_t){err, "poll"};
      break;
    }
    if (ready == 0) continue;
    int so_error = 0;
#ifdef _WIN32
    int so_length = sizeof so_error;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&so_error, &so_length) != 0) so_error = socket_error();
#else
    socklen_t so_length = sizeof so_error;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &so_error, &so_length) != 0) so_error = socket_error();
#endif
    if (so_error != 0) failure = (failure_t){so_error, "connect"};
    break;
  }
  lock_acquire(&hub->lock);
  hub->fd_closed = 1; /* the socket is no longer the hub's: a cancel from now on must not touch it */
  int cancelled = hub->closing;
  lock_release(&hub->lock);
  if (!failure.code && cancelled) failure = (failure_t){ERR_CANCELED, "connect"};
  if (failure.code) sock_close(s);
  else accept_one(hub, s);
  post_simple(hub, EV_LISTENER_CLOSED, NULL, failure);
  count(&g_threads, -1);
  hub_release_thread(hub);
  hub_unref(hub);
  return THREAD_DONE;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* JavaScript side: values, errors, the TSFN callback, and the exported functions.                                   */

/* Tags that prove an object passed back to us is one of our own wrappers (and which kind). */
static const napi_type_tag LISTENER_TAG = {0x6a1f0c5e2d3b4a71ULL, 0x9e8d7c6b5a493827ULL};
static const napi_type_tag CONNECTION_TAG = {0x3c2b1a0f9e8d7c6bULL, 0x5a4938271605f4e3ULL};

/* "<syscall> <CODE>: <text>[: <detail>]" with .code, .errno (OS errors) and .syscall, like Node's own errors. */
static napi_value make_error(napi_env env, failure_t failure, const char *detail) {
  char text[256];
  const char *name = NULL;
  int os_error = failure.code > 0;
  switch (failure.code) {
    case ERR_CANCELED: name = "ECANCELED"; snprintf(text, sizeof text, "the connection was closed"); break;
    case ERR_NOT_A_SOCKET_FILE:
      name = "EEXIST";
      snprintf(text, sizeof text, "the path exists and is not a socket: refusing to replace it; remove it or choose "
                                  "another --endpoint");
      break;
    case ERR_PATH_TOO_LONG:
      name = "ENAMETOOLONG";
      snprintf(text, sizeof text, "a socket path may have at most %d bytes", SOCKET_PATH_MAX - 1);
      break;
    case ERR_PATH_NOT_ASCII: name = "EINVAL"; snprintf(text, sizeof text, "the socket path must be ASCII"); break;
    case ERR_NO_MEMORY: name = "ENOMEM"; snprintf(text, sizeof text, "out of memory"); break;
    case ERR_PORT_FILE: name = "EIO"; snprintf(text, sizeof text, "could not write the port file"); break;
    default: name = error_name(failure.code); error_text(failure.code, text, sizeof text); break;
  }
  char code_buf[32];
  if (!name) {
    snprintf(code_buf, sizeof code_buf, "E%d", failure.code);
    name = code_buf;
  }
  const char *hint = "";
  if (failure.syscall && strcmp(failure.syscall, "socket") == 0 && error_is_no_family(failure.code)) {
    hint = NO_FAMILY_HINT;
  }
  char message[PATH_ARG_MAX + 512];
  snprintf(message, sizeof message, "%s %s: %s%s%s%s", failure.syscall ? failure.syscall : "socket", name, text, hint,
           detail ? ": " : "", detail ? detail : "");
  napi_value code_value, message_value, error, value;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok) {
    return NULL;
  }
  if (os_error && napi_create_int32(env, failure.code, &value) == napi_ok) {
    napi_set_named_property(env, error, "errno", value);
  }
  if (failure.syscall && napi_create_string_utf8(env, failure.syscall, NAPI_AUTO_LENGTH, &value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", value);
  }
  return error;
}

static void throw_failure(napi_env env, failure_t failure, const char *detail) {
  napi_value error = make_error(env, failure, detail);
  if (error) napi_throw(env, error);
  else napi_throw_error(env, NULL, "af_unix_listener: could not create an error object");
}

/* Calls fn(kind, arg?); returns the result (NULL if the call threw: Node then reports the exception). */
static napi_value call_js(napi_env env, napi_value fn, const char *kind, napi_value arg) {
  napi_value argv[2], global, result = NULL;
  if (!fn || napi_get_global(env, &global) != napi_ok ||
      napi_create_string_utf8(env, kind, NAPI_AUTO_LENGTH, &argv[0]) != napi_ok) {
    return NULL;
  }
  if (!arg && napi_get_undefined(env, &arg) != napi_ok) return NULL;
  argv[1] = arg;
  if (napi_call_function(env, global, fn, 2, argv, &result) != napi_ok) return NULL;
  return result;
}

static napi_value ref_value(napi_env env, napi_ref ref) {
  napi_value value = NULL;
  if (ref && napi_get_reference_value(env, ref, &value) != napi_ok) return NULL;
  return value;
}

static void delete_ref(napi_env env, napi_ref *ref) {
  if (*ref) napi_delete_reference(env, *ref);
  *ref = NULL;
}

static void finalize_connection_object(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  conn_unref(data);
}

static void finalize_listener_object(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  hub_unref(data);
}

/* A plain object that owns one reference to `native` and carries `tag`. */
static napi_value wrap_native(napi_env env, void *native, const napi_type_tag *tag, napi_finalize finalize) {
  napi_value object;
  if (napi_create_object(env, &object) != napi_ok) return NULL;
  if (napi_type_tag_object(env, object, tag) != napi_ok) return NULL;
  if (napi_wrap(env, object, native, finalize, NULL, NULL) != napi_ok) return NULL;
  return object;
}

static void on_connection_event(napi_env env, conn_t *c, event_t *ev, napi_value listener_fn) {
  switch (ev->kind) {
    case EV_CONNECTION: {
      napi_value object = wrap_native(env, c, &CONNECTION_TAG, finalize_connection_object);
      if (!object) {
        conn_request_close(c);
        return;
      }
      conn_ref(c); /* the object's reference */
      napi_value handler = call_js(env, listener_fn, "connection", object);
      napi_valuetype type = napi_undefined;
      if (handler) napi_typeof(env, handler, &type);
      if (type != napi_function || napi_create_reference(env, handler, 1, &c->handler) != napi_ok) {
        c->handler = NULL;
        conn_request_close(c); /* nobody to talk to */
      }
      return;
    }
    case EV_DATA: {
      napi_value buffer;
      if (!c->handler) return;
      if (napi_create_buffer_copy(env, ev->length, ev->data, NULL, &buffer) != napi_ok) {
        call_js(env, ref_value(env, c->handler), "error", make_error(env, (failure_t){ERR_NO_MEMORY, "read"}, NULL));
        return;
      }
      call_js(env, ref_value(env, c->handler), "data", buffer);
      return;
    }
    case EV_END:
      if (c->handler) call_js(env, ref_value(env, c->handler), "end", NULL);
      return;
    case EV_READ_ERROR:
      if (c->handler) call_js(env, ref_value(env, c->handler), "error", make_error(env, ev->failure, NULL));
      return;
    case EV_WRITTEN:
      delete_ref(env, &c->write_buffer); /* before JS may start the next write */
      if (c->handler) {
        call_js(env, ref_value(env, c->handler), "written", ev->failure.code ? make_error(env, ev->failure, NULL) : NULL);
      }
      return;
    case EV_CLOSED: {
      delete_ref(env, &c->write_buffer);
      napi_ref handler = c->handler;
      c->handler = NULL; /* the last event: drop the handler so the JS side can be collected */
      if (handler) {
        call_js(env, ref_value(env, handler), "close", NULL);
        napi_delete_reference(env, handler);
      }
      return;
    }
    default: return;
  }
}

/* TSFN callback, on the main thread. env is NULL when the environment is going away: just free. */
static void dispatch_event(napi_env env, napi_value listener_fn, void *context, void *data) {
  (void)context;
  event_t *ev = data;
  if (env) {
    switch (ev->kind) {
      case EV_LISTENER_ERROR: call_js(env, listener_fn, "error", make_error(env, ev->failure, NULL)); break;
      case EV_LISTENER_CLOSED:
        call_js(env, listener_fn, "close", ev->failure.code ? make_error(env, ev->failure, NULL) : NULL);
        break;
      default: on_connection_event(env, ev->conn, ev, listener_fn); break;
    }
  }
  event_free(ev);
}

/* All threads are done (or the environment is going away): nobody may use the TSFN any more. */
static void tsfn_finalized(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  hub_t *hub = data;
  lock_acquire(&hub->lock);
  hub->tsfn_alive = 0;
  lock_release(&hub->lock);
  hub_unref(hub);
}

static int get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < expected) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "af_unix_listener: missing arguments");
    return 0;
  }
  return 1;
}

static void *unwrap_tagged(napi_env env, napi_value value, const napi_type_tag *tag, const char *what) {
  bool ok = false;
  void *native = NULL;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) == napi_ok && type == napi_object &&
      napi_check_object_type_tag(env, value, tag, &ok) == napi_ok && ok &&
      napi_unwrap(env, value, &native) == napi_ok) {
    return native;
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

/* The arguments of listen() and connect(): a path and a function. */
static int get_path_and_callback(napi_env env, napi_callback_info info, char *path, size_t size, napi_value *callback) {
  napi_value argv[2];
  size_t length = 0;
  napi_valuetype type;
  if (!get_args(env, info, 2, argv)) return 0;
  if (napi_get_value_string_utf8(env, argv[0], path, size, &length) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "af_unix_listener: the path must be a string");
    return 0;
  }
  if (length == 0 || length >= size - 1) {
    throw_failure(env, (failure_t){ERR_PATH_TOO_LONG, "bind"}, length ? NULL : "empty path");
    return 0;
  }
  if (napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "af_unix_listener: onEvent must be a function");
    return 0;
  }
  *callback = argv[1];
  return 1;
}

/* Wraps an open socket (listening, or connecting) in a hub with its TSFN, its JS object and its thread. On failure
 * the socket is closed (and a listener's file removed) and a JS exception is pending; returns NULL. */
static napi_value hub_launch(napi_env env, const char *path, sock_t fd, int listening, napi_value on_event,
                             thread_entry entry) {
  hub_t *hub = calloc(1, sizeof *hub);
  if (!hub) {
    sock_close(fd);
    if (listening) remove_file(path);
    throw_failure(env, (failure_t){ERR_NO_MEMORY, "malloc"}, NULL);
    return NULL;
  }
  lock_init(&hub->lock);
  hub->env = env;
  hub->fd = fd;
  hub->listening = listening;
  snprintf(hub->path, sizeof hub->path, "%s", path);
  hub->refs = 1; /* the TSFN's, dropped by tsfn_finalized */
  lock_acquire(&g_lock);
  hub->next = g_hubs;
  g_hubs = hub;
  if (listening) g_listeners++;
  lock_release(&g_lock);

  napi_value name;
  napi_create_string_utf8(env, "af_unix_listener", NAPI_AUTO_LENGTH, &name);
  /* Unlimited queue: backpressure is per connection (one chunk in flight), so the queue stays small. */
  if (napi_create_threadsafe_function(env, on_event, NULL, name, 0, 1, hub, tsfn_finalized, hub, dispatch_event,
                                      &hub->tsfn) != napi_ok) {
    if (listening) count(&g_listeners, -1);
    sock_close(fd);
    if (listening) remove_file(path);
    hub_unref(hub);
    throw_failure(env, (failure_t){ERR_NO_MEMORY, "napi_create_threadsafe_function"}, NULL);
    return NULL;
  }
  hub->tsfn_alive = 1;

  napi_value object = wrap_native(env, hub, &LISTENER_TAG, finalize_listener_object);
  if (object) hub->refs++; /* the object's */
  hub->refs++;             /* the thread's */
  count(&g_threads, 1);
  int rc = object ? thread_start(entry, hub) : ERR_NO_MEMORY;
  if (rc != 0) {
    count(&g_threads, -1);
    if (listening) count(&g_listeners, -1);
    sock_close(fd);
    hub->fd_closed = 1;
    hub->closing = 1;
    if (listening) remove_file(path);
    napi_release_threadsafe_function(hub->tsfn, napi_tsfn_release); /* the thread's acquisition */
    hub_unref(hub);                                                  /* the thread's reference */
    throw_failure(env, (failure_t){rc, object ? "thread_create" : "napi_wrap"}, NULL);
    return NULL;
  }
  return object;
}

/* listen(path: string, onEvent: (kind, arg) => handler | undefined): listener */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  char path[PATH_ARG_MAX];
  napi_value on_event;
  if (!get_path_and_callback(env, info, path, sizeof path, &on_event)) return NULL;
  sock_t fd = SOCK_INVALID;
  failure_t failure = open_listener(path, &fd);
  if (failure.code) {
    throw_failure(env, failure, path);
    return NULL;
  }
  return hub_launch(env, path, fd, 1, on_event, accept_main);
}

/* connect(path, onEvent): dialler. Like a listener that gets exactly one connection (or none: 'close' with the
 * failure); closeListener() on it cancels a connect still in progress. For the provider's own health probe. */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  char path[PATH_ARG_MAX];
  napi_value on_event;
  if (!get_path_and_callback(env, info, path, sizeof path, &on_event)) return NULL;
  sock_t fd = SOCK_INVALID;
  failure_t failure = start_connect(path, &fd);
  if (failure.code) {
    throw_failure(env, failure, path);
    return NULL;
  }
  return hub_launch(env, path, fd, 0, on_event, connect_main);
}

/* closeListener(listener): stop accepting; 'close' follows once the socket and its file are gone. */
static napi_value js_close_listener(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  hub_t *hub = unwrap_tagged(env, argv[0], &LISTENER_TAG, "af_unix_listener: expected a listener");
  if (!hub) return NULL;
  lock_acquire(&hub->lock);
  hub_request_close_locked(hub);
  lock_release(&hub->lock);
  return NULL;
}

/* read(connection): JS wants (one more chunk of) data. */
static napi_value js_read(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  conn_t *c = unwrap_tagged(env, argv[0], &CONNECTION_TAG, "af_unix_listener: expected a connection");
  if (!c) return NULL;
  lock_acquire(&c->lock);
  if (!c->want_read) {
    c->want_read = 1;
    cond_broadcast(&c->cond);
  }
  lock_release(&c->lock);
  return NULL;
}

/* write(connection, buffer): true if the writer thread took it ('written' follows), false if the connection is closed.
 * One write at a time; the Buffer stays referenced (not copied) until 'written'. */
static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  if (!get_args(env, info, 2, argv)) return NULL;
  conn_t *c = unwrap_tagged(env, argv[0], &CONNECTION_TAG, "af_unix_listener: expected a connection");
  if (!c) return NULL;
  bool is_buffer = false;
  void *data = NULL;
  size_t length = 0;
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "af_unix_listener: write expects a Buffer");
    return NULL;
  }
  lock_acquire(&c->lock);
  int busy = c->write_pending;
  int accepted = !busy && !c->closing && !c->fd_closed;
  lock_release(&c->lock);
  if (busy) {
    napi_throw_error(env, "ERR_INVALID_STATE", "af_unix_listener: a write is already pending");
    return NULL;
  }
  if (accepted) {
    if (napi_create_reference(env, argv[1], 1, &c->write_buffer) != napi_ok) {
      c->write_buffer = NULL;
      accepted = 0;
    } else {
      lock_acquire(&c->lock);
      accepted = !c->closing && !c->fd_closed; /* re-check: a reader error may have closed it meanwhile */
      if (accepted) {
        c->write_data = data;
        c->write_length = length;
        c->write_pending = 1;
        cond_broadcast(&c->cond);
      }
      lock_release(&c->lock);
      if (!accepted) delete_ref(env, &c->write_buffer);
    }
  }
  napi_get_boolean(env, accepted, &result);
  return result;
}

/* end(connection): shut down our sending side (after the last write completed). Returns an Error or undefined. */
static napi_value js_end(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  conn_t *c = unwrap_tagged(env, argv[0], &CONNECTION_TAG, "af_unix_listener: expected a connection");
  if (!c) return NULL;
  int err = 0;
  lock_acquire(&c->lock);
  if (!c->fd_closed && !c->closing && shutdown(c->fd, SHUTDOWN_WRITE) != 0) err = socket_error();
  lock_release(&c->lock);
  /* The peer is already gone: there is nothing left to flush, which is what end() wants. */
  if (err && !error_is_not_connected(err)) return make_error(env, (failure_t){err, "shutdown"}, NULL);
  return NULL;
}

/* destroy(connection): both threads leave, the socket closes; 'close' is the last event. */
static napi_value js_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  conn_t *c = unwrap_tagged(env, argv[0], &CONNECTION_TAG, "af_unix_listener: expected a connection");
  if (c) conn_request_close(c);
  return NULL;
}

/* stats(): process-wide counts, so tests can prove that sockets and threads are released. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, value;
  lock_acquire(&g_lock);
  long counts[3] = {g_listeners, g_connections, g_threads};
  lock_release(&g_lock);
  const char *names[3] = {"listeners", "connections", "threads"};
  if (napi_create_object(env, &result) != napi_ok) return NULL;
  for (int i = 0; i < 3; i++) {
    if (napi_create_int64(env, counts[i], &value) != napi_ok) return NULL;
    napi_set_named_property(env, result, names[i], value);
  }
  return result;
}

/* The environment goes away (process exit, worker termination): make every thread of it leave. */
static void environment_cleanup(void *arg) {
  napi_env env = arg;
  lock_acquire(&g_lock);
  for (hub_t *hub = g_hubs; hub; hub = hub->next) {
    if (hub->env != env) continue;
    lock_acquire(&hub->lock);
    hub_request_close_locked(hub);
    for (conn_t *c = hub->conns; c; c = c->next) conn_request_close(c);
    lock_release(&hub->lock);
  }
  lock_release(&g_lock);
}

#ifdef _WIN32
/* Winsock is started once per process and never cleaned up: threads of an environment that is going away may still
 * be closing their sockets, and WSACleanup would pull Winsock from under them. */
static INIT_ONCE g_once = INIT_ONCE_STATIC_INIT;
static int g_wsa_error;
static BOOL CALLBACK init_once(PINIT_ONCE once, PVOID param, PVOID *context) {
  (void)once;
  (void)param;
  (void)context;
  lock_init(&g_lock);
  WSADATA wsa;
  g_wsa_error = WSAStartup(MAKEWORD(2, 2), &wsa);
  return TRUE;
}
#else
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_once(void) { lock_init(&g_lock); }
#endif

NAPI_MODULE_INIT() {
#ifdef _WIN32
  InitOnceExecuteOnce(&g_once, init_once, NULL, NULL);
  if (g_wsa_error != 0) {
    throw_failure(env, (failure_t){g_wsa_error, "WSAStartup"}, NULL);
    return NULL;
  }
#else
  pthread_once(&g_once, init_once);
#endif
  if (napi_add_env_cleanup_hook(env, environment_cleanup, env) != napi_ok) return NULL;

  napi_property_descriptor properties[] = {
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeListener", NULL, js_close_listener, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"read", NULL, js_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"end", NULL, js_end, NULL, NULL, NULL, napi_enumerable, NULL},
      {"destroy", NULL, js_destroy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) {
    return NULL;
  }
  napi_value family;
  if (napi_create_string_utf8(env, FAMILY_NAME, NAPI_AUTO_LENGTH, &family) != napi_ok ||
      napi_set_named_property(env, exports, "family", family) != napi_ok) {
    return NULL;
  }
  return exports;
}
