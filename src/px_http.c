/*
 * px.http: HTTP(S) requests through libcurl.
 *
 *   request{method=, url=, headers=, body=, connect_timeout_ms=, timeout_ms=,
 *           cafile=, capath=, client_cert=, client_key=, pinned_pubkey=,
 *           insecure=, max_response=, follow_redirects=, proxy=}
 *       -> {status, headers, body, duration_ms, truncated} | nil, msg
 *   start{...same...}  -> handle (a waitable, see px_wait.h) | nil, msg
 *       handle:done(), :wait([ms]), :result(), :cancel(), :close(), <close>
 *
 * Each started request runs on its own worker thread (curl multi with one
 * easy handle, so cancel() can wake it at once) and signals completion on an
 * eventfd the waitable polls. The worker never touches Lua; everything it
 * writes is read only after the done flag is seen. request{} runs the same
 * loop on the calling thread. Error messages name the URL (password masked),
 * never carry credential header values, and go through px.log.scrub.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <lauxlib.h>
#include <lua.h>

#include "px_config.h"
#include "px_wait.h"

#define HANDLE_MT "px.http.request"
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_MAX_RESPONSE (64 << 20)
#define MAX_HEADER_BYTES (1u << 20)
#define MAX_REDIRECTS 10
#define MASK "(secret)"

struct buf {
  char *p;
  size_t len, cap;
};

struct req {
  struct px_waitable w; /* must be first: see px_wait.h */
  CURL *easy;
  CURLM *multi;
  struct curl_slist *hdrs;
  long connect_timeout_ms, timeout_ms;
  size_t max_response;
  int efd;
  pthread_t thread;
  int threaded, joined;
  atomic_int cancel;
  atomic_int done;
  /* Written by the worker before done is set. */
  struct buf body, head;
  int truncated, cancelled, oom, multi_failed;
  int closed; /* released by close()/__gc: no result left */
  CURLcode code;
  long status, os_errno;
  double duration_ms;
  char errbuf[CURL_ERROR_SIZE];
  /* fingerprint= : the leaf certificate's SHA-256 must equal fp */
  int has_fp, fp_mismatch;
  unsigned char fp[32];
  char fp_seen[96];
};

static double now_exact_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int buf_add(struct buf *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + n) nc *= 2;
    char *np = realloc(b->p, nc);
    if (np == NULL) return -1;
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* ---- the worker side (no Lua here) -------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  struct req *r = ud;
  size_t len = sz * n;
  if (atomic_load(&r->cancel)) return 0;
  size_t room = r->max_response - r->body.len;
  size_t take = len < room ? len : room;
  if (take > 0 && buf_add(&r->body, p, take) < 0) {
    r->oom = 1;
    return 0;
  }
  if (take < len) { /* over the cap: stop the transfer here */
    r->truncated = 1;
    return 0;
  }
  return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  struct req *r = ud;
  size_t len = sz * n;
  /* A new status line (redirect, 100-continue): keep the last response's. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (r->head.len + len <= MAX_HEADER_BYTES && buf_add(&r->head, p, len) < 0) {
    r->oom = 1;
    return 0;
  }
  return len;
}

static void perform(struct req *r) {
  double t0 = now_exact_ms();
  int running = 1, got = 0;
  CURLMcode mc = curl_multi_add_handle(r->multi, r->easy);
  while (mc == CURLM_OK) {
    if (atomic_load(&r->cancel)) {
      r->cancelled = 1;
      break;
    }
    mc = curl_multi_perform(r->multi, &running);
    if (mc != CURLM_OK || !running) break;
    mc = curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
  }
  CURLMsg *m;
  int queued;
  while ((m = curl_multi_info_read(r->multi, &queued)) != NULL)
    if (m->msg == CURLMSG_DONE) {
      r->code = m->data.result;
      got = 1;
    }
  if (!got && !r->cancelled) {
    r->multi_failed = 1;
    snprintf(r->errbuf, sizeof r->errbuf, "%s", curl_multi_strerror(mc));
  }
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &r->os_errno);
  curl_multi_remove_handle(r->multi, r->easy);
  r->duration_ms = now_exact_ms() - t0;
}

static void *worker(void *ud) {
  struct req *r = ud;
  perform(r);
  atomic_store(&r->done, 1);
  uint64_t one = 1;
  ssize_t n;
  do {
    n = write(r->efd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
  return NULL;
}

/* ---- the request as a waitable ------------------------------------------ */

static int http_finished(struct px_waitable *w) {
  return atomic_load(&((struct req *)w)->done);
}

static int http_fill(struct px_waitable *w, struct pollfd *fds, int max, int64_t *deadline) {
  struct req *r = (struct req *)w;
  if (max < 1 || r->efd < 0 || http_finished(w)) return 0;
  fds[0].fd = r->efd;
  fds[0].events = POLLIN;
  fds[0].revents = 0;
  return 1;
}

static void http_step(struct px_waitable *w, const struct pollfd *fds, int n, int64_t now) {
  struct req *r = (struct req *)w;
  if (n > 0 && fds[0].revents) {
    uint64_t v;
    while (read(r->efd, &v, sizeof v) < 0 && errno == EINTR) {
    }
  }
}

static const struct px_waitable_ops http_ops = {http_fill, http_step, http_finished};

static void join(struct req *r) {
  if (r->threaded && !r->joined) {
    pthread_join(r->thread, NULL);
    r->joined = 1;
  }
}

/* Stops a running worker (if any) and frees everything. Idempotent. */
static void release(struct req *r) {
  if (r->threaded && !r->joined) {
    atomic_store(&r->cancel, 1);
    curl_multi_wakeup(r->multi);
    join(r);
  }
  if (r->multi) curl_multi_cleanup(r->multi);
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  r->multi = NULL;
  r->easy = NULL;
  r->hdrs = NULL;
  if (r->efd >= 0) close(r->efd);
  r->efd = -1;
  free(r->body.p);
  free(r->head.p);
  memset(&r->body, 0, sizeof r->body);
  memset(&r->head, 0, sizeof r->head);
}

/* ---- certificate fingerprint ------------------------------------------- */

/* "AB:CD:..." (32 pairs) -> 32 bytes; 0 on success. out may be NULL. */
static int parse_fingerprint(const char *s, unsigned char *out) {
  if (strlen(s) != 95) return -1;
  for (int i = 0; i < 32; i++) {
    const char *p = s + 3 * i;
    if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1])) return -1;
    if (i < 31 && p[2] != ':') return -1;
    char hex[3] = {p[0], p[1], 0};
    if (out) out[i] = (unsigned char)strtoul(hex, NULL, 16);
  }
  return 0;
}

/* Replaces OpenSSL's chain check: the certificate is trusted when, and only
 * when, its SHA-256 fingerprint is the pinned one (how Proxmox's own tools
 * trust a node's self-signed certificate). Runs in the handshake, so nothing
 * (no token) is sent to a server that fails it. */
static int verify_fingerprint(X509_STORE_CTX *xs, void *arg) {
  struct req *r = arg;
  X509 *leaf = X509_STORE_CTX_get0_cert(xs);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (leaf && X509_digest(leaf, EVP_sha256(), md, &n) && n == 32) {
    if (memcmp(md, r->fp, 32) == 0) return 1;
    for (unsigned i = 0; i < 32; i++)
      snprintf(r->fp_seen + 3 * i, sizeof r->fp_seen - 3 * i, i < 31 ? "%02X:" : "%02X", md[i]);
  }
  r->fp_mismatch = 1;
  X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
  return 0;
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg) {
  (void)curl;
  SSL_CTX_set_cert_verify_callback((SSL_CTX *)ssl_ctx, verify_fingerprint, arg);
  return CURLE_OK;
}

/* ---- options ------------------------------------------------------------ */

struct spec {
  const char *method, *url, *body;
  size_t body_len;
  const char *cafile, *capath, *client_cert, *client_key, *pinned_pubkey, *proxy, *fingerprint;
  lua_Integer connect_timeout_ms, timeout_ms, max_response;
  int insecure, follow, has_headers;
};

static const char *const option_names[] = {
    "method", "url", "headers", "body", "connect_timeout_ms", "timeout_ms", "cafile", "capath",
    "client_cert", "client_key", "pinned_pubkey", "insecure", "max_response", "follow_redirects",
    "proxy", "fingerprint", NULL};

static void check_known_options(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; option_names[i]; i++)
        if (strcmp(lua_tostring(L, -1), option_names[i]) == 0) ok = 1;
    if (!ok) {
      lua_pushvalue(L, -1);
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", luaL_tolstring(L, -1, NULL)));
    }
  }
}

static const char *opt_string(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad option '%s' (string expected, got %s)", field, luaL_typename(L, -1));
    s = lua_tostring(L, -1);
    if (strlen(s) != lua_rawlen(L, -1)) luaL_error(L, "bad option '%s' (contains a NUL byte)", field);
  }
  lua_pop(L, 1); /* still referenced by the options table */
  return s;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *field, lua_Integer def) {
  lua_getfield(L, idx, field);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0) luaL_error(L, "bad option '%s' (integer >= 0 expected)", field);
  }
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int idx, const char *field) {
  lua_getfield(L, idx, field);
  int t = lua_type(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_error(L, "bad option '%s' (boolean expected)", field);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Header names whose values are credentials, kept out of every message. */
static int is_secret_header(const char *name) {
  static const char *const names[] = {"authorization", "proxy-authorization", "x-api-key", "cookie",
                                      "x-auth-token", "x-vault-token", "private-token", NULL};
  for (int i = 0; names[i]; i++)
    if (strcasecmp(name, names[i]) == 0) return 1;
  return strcasestr(name, "token") != NULL || strcasestr(name, "secret") != NULL ||
         strcasestr(name, "password") != NULL;
}

static void add_secret(lua_State *L, int secrets, const char *s, size_t n) {
  if (n < 3) return; /* too short to mask without mangling the message */
  lua_pushlstring(L, s, n);
  lua_rawseti(L, secrets, (lua_Integer)lua_rawlen(L, secrets) + 1);
}

static int valid_token(const char *s, int (*ok)(int)) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (!ok((unsigned char)*s)) return 0;
  return 1;
}

static int method_char(int c) { return isupper(c) || c == '-' || c == '_'; }
static int header_name_char(int c) { return isgraph(c) && c != ':'; }

/* The URL as messages show it: "user:(secret)@" for a password. Pushes the
 * shown URL and records the password in secrets. */
static void push_shown_url(lua_State *L, const char *url, int secrets) {
  const char *auth = strstr(url, "://");
  auth = auth ? auth + 3 : url;
  size_t alen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < auth + alen; p++)
    if (*p == '@') at = p;
  const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (colon == NULL) {
    lua_pushstring(L, url);
    return;
  }
  add_secret(L, secrets, colon + 1, (size_t)(at - colon - 1));
  lua_pushfstring(L, "%s%s%s", lua_pushlstring(L, url, (size_t)(colon + 1 - url)), MASK, at);
  lua_remove(L, -2);
}

/* Reads and checks the options at idx (every Lua error happens here, before
 * anything is allocated), and pushes the request's "info" table: the shown
 * URL, the method and the strings to mask in messages. */
static void read_spec(lua_State *L, int idx, struct spec *s) {
  memset(s, 0, sizeof *s);
  luaL_checktype(L, idx, LUA_TTABLE);
  check_known_options(L, idx);
  s->url = opt_string(L, idx, "url");
  if (s->url == NULL) luaL_error(L, "bad option 'url' (string expected)");
  if (strncasecmp(s->url, "http://", 7) != 0 && strncasecmp(s->url, "https://", 8) != 0)
    luaL_error(L, "bad option 'url' (http:// or https:// URL expected, got '%s')", s->url);
  lua_getfield(L, idx, "body"); /* any bytes, NULs included */
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad option 'body' (string expected, got %s)", luaL_typename(L, -1));
    s->body = lua_tolstring(L, -1, &s->body_len);
  }
  lua_pop(L, 1); /* still referenced by the options table */
  s->method = opt_string(L, idx, "method");
  if (s->method == NULL) s->method = s->body ? "POST" : "GET";
  if (!valid_token(s->method, method_char) || strlen(s->method) > 32)
    luaL_error(L, "bad option 'method' (an upper-case HTTP method expected, got '%s')", s->method);
  s->cafile = opt_string(L, idx, "cafile");
  s->capath = opt_string(L, idx, "capath");
  s->client_cert = opt_string(L, idx, "client_cert");
  s->client_key = opt_string(L, idx, "client_key");
  s->pinned_pubkey = opt_string(L, idx, "pinned_pubkey");
  s->proxy = opt_string(L, idx, "proxy");
  s->fingerprint = opt_string(L, idx, "fingerprint");
  if (s->fingerprint && parse_fingerprint(s->fingerprint, NULL) != 0)
    luaL_error(L, "bad option 'fingerprint' (SHA-256 expected: 32 hex pairs separated by ':', got '%s')",
               s->fingerprint);
  s->connect_timeout_ms = opt_int(L, idx, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS);
  s->timeout_ms = opt_int(L, idx, "timeout_ms", DEFAULT_TIMEOUT_MS);
  s->max_response = opt_int(L, idx, "max_response", DEFAULT_MAX_RESPONSE);
  if (s->connect_timeout_ms > INT32_MAX || s->timeout_ms > INT32_MAX)
    luaL_error(L, "bad option 'timeout_ms' (too large)");
  s->insecure = opt_bool(L, idx, "insecure");
  s->follow = opt_bool(L, idx, "follow_redirects");

  lua_createtable(L, 0, 3);
  int info = lua_gettop(L);
  lua_newtable(L);
  int secrets = lua_gettop(L);
  lua_getfield(L, idx, "headers");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) luaL_error(L, "bad option 'headers' (table expected)");
    s->has_headers = 1;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "bad option 'headers' (string names and string values expected)");
      const char *k = lua_tostring(L, -2);
      size_t vn;
      const char *v = lua_tolstring(L, -1, &vn);
      if (!valid_token(k, header_name_char) || strlen(k) != lua_rawlen(L, -2))
        luaL_error(L, "bad option 'headers' (invalid header name '%s')", k);
      if (strlen(v) != vn || strpbrk(v, "\r\n"))
        luaL_error(L, "bad option 'headers' (value of '%s' contains CR, LF or NUL)", k);
      if (is_secret_header(k)) {
        add_secret(L, secrets, v, vn);
        const char *sp = strrchr(v, ' '); /* "Bearer <token>", "Basic <b64>" */
        if (sp) add_secret(L, secrets, sp + 1, vn - (size_t)(sp + 1 - v));
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  push_shown_url(L, s->url, secrets);
  lua_setfield(L, info, "url");
  lua_setfield(L, info, "secrets");
  lua_pushstring(L, s->method);
  lua_setfield(L, info, "method");
}

/* Calls require("px.log")[fn](arg) (pushes its first result). */
static void call_log(lua_State *L, const char *fn, int arg) {
  arg = lua_absindex(L, arg);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "px.log");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_pushvalue(L, arg);
  lua_call(L, 1, 1);
}

/* ---- setting up curl ---------------------------------------------------- */

static int add_header(struct req *r, const char *k, const char *v) {
  size_t n = strlen(k) + strlen(v) + 3;
  char *line = malloc(n);
  if (line == NULL) return -1;
  /* "Name;" sends an empty value; "Name:" would remove the header. */
  if (*v) snprintf(line, n, "%s: %s", k, v);
  else snprintf(line, n, "%s;", k);
  struct curl_slist *l = curl_slist_append(r->hdrs, line);
  free(line);
  if (l == NULL) return -1;
  r->hdrs = l;
  return 0;
}

/* Builds the curl handles for s into r. Makes no Lua call that can raise
 * (the headers were checked by read_spec). Returns 0 or writes msg. */
static int setup(lua_State *L, int opts, struct req *r, const struct spec *s, char *msg, size_t msglen) {
  r->easy = curl_easy_init();
  r->multi = curl_multi_init();
  if (r->easy == NULL || r->multi == NULL) {
    snprintf(msg, msglen, "cannot create a curl handle");
    return -1;
  }
  int have_expect = 0;
  if (s->has_headers) {
    lua_getfield(L, opts, "headers");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *k = lua_tostring(L, -2);
      if (strcasecmp(k, "expect") == 0) have_expect = 1;
      if (add_header(r, k, lua_tostring(L, -1)) < 0) {
        lua_pop(L, 3);
        snprintf(msg, msglen, "out of memory");
        return -1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  /* curl's "Expect: 100-continue" stalls a second on servers that ignore it. */
  if (!have_expect) {
    struct curl_slist *l = curl_slist_append(r->hdrs, "Expect:");
    if (l == NULL) {
      snprintf(msg, msglen, "out of memory");
      return -1;
    }
    r->hdrs = l;
  }
  r->connect_timeout_ms = (long)s->connect_timeout_ms;
  r->timeout_ms = (long)s->timeout_ms;
  r->max_response = (size_t)s->max_response;

  CURL *e = r->easy;
  CURLcode c = CURLE_OK;
#define SET(opt, val) \
  if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val)
  SET(CURLOPT_URL, s->url);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_QUICK_EXIT, 1L); /* a cancel must not wait for a DNS lookup */
  SET(CURLOPT_ERRORBUFFER, r->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, r);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, s->follow ? 1L : 0L);
  SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
  SET(CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
  SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
  SET(CURLOPT_SSL_VERIFYPEER, s->insecure ? 0L : 1L);
  SET(CURLOPT_SSL_VERIFYHOST, s->insecure ? 0L : 2L);
  SET(CURLOPT_USERAGENT, "phoenix/" PX_VERSION);
  SET(CURLOPT_ACCEPT_ENCODING, "");
  SET(CURLOPT_HTTPHEADER, r->hdrs);
  if (s->cafile) SET(CURLOPT_CAINFO, s->cafile);
  if (s->capath) SET(CURLOPT_CAPATH, s->capath);
  if (s->client_cert) SET(CURLOPT_SSLCERT, s->client_cert);
  if (s->client_key) SET(CURLOPT_SSLKEY, s->client_key);
  if (s->pinned_pubkey) SET(CURLOPT_PINNEDPUBLICKEY, s->pinned_pubkey);
  if (s->proxy) SET(CURLOPT_PROXY, s->proxy);
  if (s->fingerprint) {
    parse_fingerprint(s->fingerprint, r->fp);
    r->has_fp = 1;
    /* the fingerprint is the trust: no CA chain, no host name (a node's
     * certificate names the node, not the address used) */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
    SET(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    SET(CURLOPT_SSL_CTX_DATA, r);
  }
  if (strcmp(s->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (s->body || strcmp(s->method, "POST") == 0) {
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(s->body ? s->body_len : 0));
    SET(CURLOPT_COPYPOSTFIELDS, s->body ? s->body : "");
    if (strcmp(s->method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, s->method);
  } else if (strcmp(s->method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, s->method);
  }
#undef SET
  if (c != CURLE_OK) {
    snprintf(msg, msglen, "cannot set up the request: %s", curl_easy_strerror(c));
    return -1;
  }
  return 0;
}

/* ---- results ------------------------------------------------------------ */

static void push_masked(lua_State *L, const char *text, int info) {
  lua_pushstring(L, text);
  lua_getiuservalue(L, info, 1);
  lua_getfield(L, -1, "secrets");
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    const char *sec = lua_tostring(L, -1);
    luaL_gsub(L, lua_tostring(L, -4), sec, MASK);
    lua_replace(L, -5);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  call_log(L, "scrub", -1);
  lua_remove(L, -2);
}

/* Pushes nil and "<url>: <what>". ud is the request's stack index. */
static int push_failure(lua_State *L, int ud, const char *what) {
  ud = lua_absindex(L, ud);
  lua_getiuservalue(L, ud, 1);
  lua_getfield(L, -1, "url");
  lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), what);
  push_masked(L, lua_tostring(L, -1), ud);
  lua_replace(L, -4);
  lua_pop(L, 2);
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static void describe_error(const struct req *r, char *out, size_t n) {
  if (r->oom) {
    snprintf(out, n, "out of memory");
  } else if (r->has_fp && r->fp_mismatch) {
    snprintf(out, n, "the server's certificate has SHA-256 fingerprint %s, not the one given (fingerprint)",
             r->fp_seen[0] ? r->fp_seen : "(unreadable)");
  } else if (r->multi_failed) {
    snprintf(out, n, "%s", r->errbuf);
  } else if (r->code == CURLE_OPERATION_TIMEDOUT) {
    /* curl says "Operation timed out" for the total limit, "Connection" or
     * "Resolving" for the connect phase. */
    int total = strncmp(r->errbuf, "Operation", 9) == 0;
    snprintf(out, n, "%stimed out after %ld ms", total ? "" : "connect ",
             total ? r->timeout_ms : r->connect_timeout_ms);
  } else if (r->code == CURLE_COULDNT_CONNECT && r->os_errno != 0) {
    snprintf(out, n, "%s", strerror((int)r->os_errno));
  } else if (r->errbuf[0]) {
    snprintf(out, n, "%s", r->errbuf);
  } else {
    snprintf(out, n, "%s", curl_easy_strerror(r->code));
  }
}

/* Response headers as a table: lower-case names; a repeated header's values
 * joined with ", " (Set-Cookie's with "\n", as commas occur inside them). */
static void push_headers(lua_State *L, const struct buf *h) {
  lua_newtable(L);
  int t = lua_gettop(L);
  const char *p = h->p ? h->p : "", *end = p + h->len;
  int have_last = 0;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    const char *le = eol ? eol : end;
    if (le > p && le[-1] == '\r') le--;
    if (le == p || (le - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      p = next;
      continue;
    }
    if ((*p == ' ' || *p == '\t') && have_last) { /* obsolete line folding */
      while (p < le && (*p == ' ' || *p == '\t')) p++;
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      lua_pushliteral(L, " ");
      lua_pushlstring(L, p, (size_t)(le - p));
      lua_concat(L, 3);
      lua_rawset(L, t);
      p = next;
      continue;
    }
    const char *colon = memchr(p, ':', (size_t)(le - p));
    if (colon == NULL) {
      p = next;
      continue;
    }
    if (have_last) lua_pop(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const char *q = p; q < colon; q++) luaL_addchar(&b, (char)tolower((unsigned char)*q));
    luaL_pushresult(&b);
    have_last = 1;
    const char *v = colon + 1;
    while (v < le && (*v == ' ' || *v == '\t')) v++;
    const char *ve = le;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    lua_pushvalue(L, -1);
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, v, (size_t)(ve - v));
    } else {
      const char *sep = strcmp(lua_tostring(L, -2), "set-cookie") == 0 ? "\n" : ", ";
      lua_pushstring(L, sep);
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_concat(L, 3);
    }
    lua_rawset(L, t);
    p = next;
  }
  if (have_last) lua_pop(L, 1);
}

/* Pushes what request{} returns for a finished request at ud. */
static int push_result(lua_State *L, int ud) {
  ud = lua_absindex(L, ud);
  struct req *r = lua_touserdata(L, ud);
  if (r->closed) return push_failure(L, ud, "closed");
  if (r->cancelled) return push_failure(L, ud, "cancelled");
  if (r->oom || r->multi_failed || (r->code != CURLE_OK && !(r->code == CURLE_WRITE_ERROR && r->truncated))) {
    char what[CURL_ERROR_SIZE + 64];
    describe_error(r, what, sizeof what);
    return push_failure(L, ud, what);
  }
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, r->status);
  lua_setfield(L, -2, "status");
  push_headers(L, &r->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
  lua_setfield(L, -2, "body");
  lua_pushnumber(L, r->duration_ms);
  lua_setfield(L, -2, "duration_ms");
  lua_pushboolean(L, r->truncated);
  lua_setfield(L, -2, "truncated");
  return 1;
}

/* ---- the Lua API -------------------------------------------------------- */

/* Checks the options, creates the request userdata (on top of the stack,
 * with its info table as user value) and sets up curl. On a setup failure
 * pushes nil, msg and returns 2; else 0. */
static int prepare(lua_State *L, struct req **out, struct spec *s) {
  read_spec(L, 1, s);
  int info = lua_gettop(L);
  if (s->insecure && strncasecmp(s->url, "https://", 8) == 0) {
    lua_getfield(L, info, "url");
    lua_pushfstring(L, "%s: TLS certificate verification is off (insecure = true)", lua_tostring(L, -1));
    call_log(L, "warn", -1);
    lua_pop(L, 3);
  }
  struct req *r = lua_newuserdatauv(L, sizeof *r, 1);
  memset(r, 0, sizeof *r);
  r->w.ops = &http_ops;
  r->efd = -1;
  atomic_init(&r->cancel, 0);
  atomic_init(&r->done, 0);
  luaL_setmetatable(L, HANDLE_MT);
  lua_pushvalue(L, info);
  lua_setiuservalue(L, -2, 1);
  *out = r;
  char msg[256];
  if (setup(L, 1, r, s, msg, sizeof msg) < 0) {
    release(r);
    atomic_store(&r->done, 1);
    r->cancelled = 0;
    return push_failure(L, -1, msg);
  }
  return 0;
}

/* request(opts) -> result | nil, msg; blocks the calling thread. */
static int http_request(lua_State *L) {
  struct req *r;
  struct spec s;
  int n = prepare(L, &r, &s);
  if (n) return n;
  perform(r);
  atomic_store(&r->done, 1);
  n = push_result(L, -1);
  release(r); /* the GC would too; free the buffers now */
  return n;
}

/* start(opts) -> handle | nil, msg */
static int http_start(lua_State *L) {
  struct req *r;
  struct spec s;
  int n = prepare(L, &r, &s);
  if (n) return n;
  r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int e = r->efd < 0 ? errno : pthread_create(&r->thread, NULL, worker, r);
  if (e != 0) {
    release(r);
    atomic_store(&r->done, 1);
    return push_failure(L, -1, strerror(e));
  }
  r->threaded = 1;
  return 1;
}

static struct req *check_req(lua_State *L) {
  return luaL_checkudata(L, 1, HANDLE_MT);
}

/* Waits until finished or the deadline (-1: none). Returns finished. */
static int wait_until(struct req *r, int64_t deadline) {
  while (!http_finished(&r->w)) {
    int64_t now = px_wait_now_ms();
    if (deadline >= 0 && now >= deadline) return 0;
    struct pollfd pfd = {.fd = r->efd, .events = POLLIN};
    int r2 = poll(&pfd, 1, deadline < 0 ? -1 : (int)(deadline - now));
    if (r2 > 0) http_step(&r->w, &pfd, 1, now);
  }
  join(r);
  return 1;
}

/* h:done() -> boolean */
static int handle_done(lua_State *L) {
  struct req *r = check_req(L);
  lua_pushboolean(L, wait_until(r, 0));
  return 1;
}

/* h:wait([timeout_ms]) -> result | nil, msg; nil, "timeout" while running. */
static int handle_wait(lua_State *L) {
  struct req *r = check_req(L);
  lua_Integer t = luaL_optinteger(L, 2, -1);
  if (!wait_until(r, t < 0 ? -1 : px_wait_now_ms() + t)) {
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  return push_result(L, 1);
}

/* h:result() -> result | nil, msg once finished; nothing while running. */
static int handle_result(lua_State *L) {
  struct req *r = check_req(L);
  if (!http_finished(&r->w)) return 0;
  join(r);
  return push_result(L, 1);
}

/* h:cancel() -> true; the request then finishes with nil, "<url>: cancelled". */
static int handle_cancel(lua_State *L) {
  struct req *r = check_req(L);
  if (r->threaded && !r->joined) {
    atomic_store(&r->cancel, 1);
    curl_multi_wakeup(r->multi);
    join(r);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int handle_gc(lua_State *L) {
  struct req *r = check_req(L);
  release(r);
  r->closed = 1;
  atomic_store(&r->done, 1);
  return 0;
}

static int handle_tostring(lua_State *L) {
  struct req *r = check_req(L);
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, "method");
  lua_getfield(L, -2, "url");
  lua_pushfstring(L, "px.http request (%s %s, %s)", lua_tostring(L, -2), lua_tostring(L, -1),
                  http_finished(&r->w) ? "finished" : "running");
  return 1;
}

static const luaL_Reg handle_methods[] = {
    {"done", handle_done},     {"wait", handle_wait},   {"result", handle_result},
    {"cancel", handle_cancel}, {"close", handle_gc},    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"request", http_request}, {"start", http_start}, {NULL, NULL},
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int luaopen_px_http(lua_State *L) {
  pthread_once(&curl_once, curl_init);
  if (luaL_newmetatable(L, HANDLE_MT)) {
    luaL_newlib(L, handle_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "__px_waitable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
