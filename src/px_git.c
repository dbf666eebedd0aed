/*
 * px.git: what phoenix needs of git repositories, through libgit2.
 *
 *   resolve(url_or_path [, ref])            -> sha | nil, msg
 *       a remote "ls" (no clone): ref is HEAD (default), a branch, a tag
 *       (annotated tags peeled to their commit), a full refs/... name, or a
 *       full 40-hex sha (returned as is once the remote answered).
 *   fetch(url_or_path, cache_dir [, ref])   -> sha, downloaded | nil, msg
 *       cache_dir is a bare repository: created on first use, then fetched
 *       into (branches and tags). Nothing is downloaded when the ref's
 *       commit is already there.
 *   read_file(repo_dir, commit, path)       -> content | nil, msg
 *   ls_tree(repo_dir, commit [, path])      -> {{name, type, mode, id}...} | nil, msg
 *
 * libgit2 objects live in a "res" userdata while a call runs, so a Lua error
 * (out of memory while pushing a result) cannot leak them; each call frees
 * them before it returns. Messages name the URL with its password masked and
 * go through px.log.scrub.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <git2.h>
#include <lauxlib.h>
#include <lua.h>

#define RES_MT "px.git.res"
#define MASK "(secret)"

struct res {
  git_repository *repo;
  git_remote *remote;
  git_object *obj, *peeled;
  git_tree *subtree;
  git_tree_entry *entry;
  git_blob *blob;
};

static void res_free(struct res *r) {
  git_blob_free(r->blob);
  git_tree_entry_free(r->entry);
  git_tree_free(r->subtree);
  git_object_free(r->peeled);
  git_object_free(r->obj);
  if (r->remote) {
    git_remote_disconnect(r->remote);
    git_remote_free(r->remote);
  }
  git_repository_free(r->repo);
  memset(r, 0, sizeof *r);
}

static int res_gc(lua_State *L) {
  res_free(luaL_checkudata(L, 1, RES_MT));
  return 0;
}

static struct res *new_res(lua_State *L) {
  struct res *r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, RES_MT);
  return r;
}

/* ---- messages ------------------------------------------------------------ */

/* Pushes the URL as messages show it ("user:(secret)@host") and, when it
 * has a password, the password (else nil) below it. */
static void push_shown_url(lua_State *L, const char *url) {
  const char *auth = strstr(url, "://");
  auth = auth ? auth + 3 : url;
  size_t alen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < auth + alen; p++)
    if (*p == '@') at = p;
  const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (at && colon == NULL && strncasecmp(url, "http", 4) == 0) {
    /* https://<token>@host/...: the user name is the credential */
    lua_pushlstring(L, auth, (size_t)(at - auth));
    lua_pushlstring(L, url, (size_t)(auth - url));
    lua_pushfstring(L, "%s%s%s", lua_tostring(L, -1), MASK, at);
    lua_remove(L, -2);
    return;
  }
  if (colon == NULL || at == colon + 1) {
    lua_pushnil(L);
    lua_pushstring(L, url);
    return;
  }
  lua_pushlstring(L, colon + 1, (size_t)(at - colon - 1));
  lua_pushlstring(L, url, (size_t)(colon + 1 - url));
  lua_pushfstring(L, "%s%s%s", lua_tostring(L, -1), MASK, at);
  lua_remove(L, -2);
}

/* Returns nil, "<where>: <what>" with the password of where (a URL) masked
 * everywhere and the text run through px.log.scrub. */
static int fail(lua_State *L, const char *where, const char *what) {
  push_shown_url(L, where);
  lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), what);
  if (!lua_isnil(L, -3)) {
    luaL_gsub(L, lua_tostring(L, -1), lua_tostring(L, -3), MASK);
    lua_replace(L, -2);
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "px.log");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "scrub");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 1);
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* nil, msg from libgit2's last error. */
static int fail_git(lua_State *L, const char *where, int code) {
  const git_error *e = git_error_last();
  char what[512];
  if (e && e->message) snprintf(what, sizeof what, "%s", e->message);
  else snprintf(what, sizeof what, "libgit2 error %d", code);
  return fail(L, where, what);
}

/* ---- refs ----------------------------------------------------------------- */

static int is_full_sha(const char *s) {
  if (strlen(s) != GIT_OID_HEXSZ) return 0;
  for (; *s; s++)
    if (!isxdigit((unsigned char)*s)) return 0;
  return 1;
}

static const git_oid *find_head(const git_remote_head **heads, size_t n, const char *name) {
  char peeled[1024];
  int len = snprintf(peeled, sizeof peeled, "%s^{}", name);
  if (len > 0 && (size_t)len < sizeof peeled)
    for (size_t i = 0; i < n; i++) /* an annotated tag's commit */
      if (strcmp(heads[i]->name, peeled) == 0) return &heads[i]->oid;
  for (size_t i = 0; i < n; i++)
    if (strcmp(heads[i]->name, name) == 0) return &heads[i]->oid;
  return NULL;
}

/* The commit ref names on the remote, in git's order of precedence: an
 * exact name (HEAD, refs/...), then a tag, then a branch. */
static int match_ref(git_remote *remote, const char *ref, git_oid *out) {
  const git_remote_head **heads;
  size_t n;
  if (git_remote_ls(&heads, &n, remote) < 0) return -1;
  if (is_full_sha(ref)) return git_oid_fromstr(out, ref) < 0 ? -1 : 1;
  const git_oid *id = NULL;
  char name[1024];
  if (strcmp(ref, "HEAD") == 0 || strncmp(ref, "refs/", 5) == 0) {
    id = find_head(heads, n, ref);
  } else {
    snprintf(name, sizeof name, "refs/tags/%s", ref);
    id = find_head(heads, n, name);
    if (id == NULL) {
      snprintf(name, sizeof name, "refs/heads/%s", ref);
      id = find_head(heads, n, name);
    }
  }
  if (id == NULL) return 0;
  git_oid_cpy(out, id);
  return 1;
}

static void check_ref(lua_State *L, int arg, const char *ref) {
  if (*ref == '\0' || strlen(ref) > 900 || strchr(ref, '\n'))
    luaL_argerror(L, arg, "a branch, tag, HEAD, refs/... name or full commit sha expected");
}

static int ref_not_found(lua_State *L, const char *url, const char *ref) {
  lua_pushfstring(L, "ref '%s' not found (no such branch, tag or HEAD)", ref);
  return fail(L, url, lua_tostring(L, -1));
}

/* An unnamed remote for url (in repo, or detached when repo is NULL).
 * url.*.insteadOf is not applied: libgit2 1.5 leaks a PCRE2 match block
 * for every config entry that rewrite check looks at. */
static int new_remote(git_remote **out, git_repository *repo, const char *url) {
  git_remote_create_options o;
  git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
  o.repository = repo;
  o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
  return git_remote_create_with_opts(out, url, &o);
}

/* A local path that does not exist: libgit2 would only say "unsupported
 * URL protocol". Returns non-zero (and pushes nil, msg) for such a path. */
static int missing_path(lua_State *L, const char *url) {
  if (strstr(url, "://") || (url[0] != '/' && url[0] != '.')) return 0;
  struct stat st;
  if (stat(url, &st) == 0) return 0;
  fail(L, url, "no such repository (the path does not exist)");
  return 1;
}

/* Connects r->remote for fetching; libgit2's defaults (no credentials). */
static int connect(struct res *r) {
  git_remote_callbacks cb;
  git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
  return git_remote_connect(r->remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
}

/* resolve(url [, ref]) -> sha | nil, msg */
static int git_resolve(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *ref = luaL_optstring(L, 2, "HEAD");
  check_ref(L, 2, ref);
  if (missing_path(L, url)) return 2;
  struct res *r = new_res(L);
  int e = new_remote(&r->remote, NULL, url);
  if (e == 0) e = connect(r);
  git_oid id;
  int found = e == 0 ? match_ref(r->remote, ref, &id) : -1;
  int n;
  if (found < 0) {
    n = fail_git(L, url, e);
  } else if (found == 0) {
    n = ref_not_found(L, url, ref);
  } else {
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &id);
    lua_pushstring(L, hex);
    n = 1;
  }
  res_free(r);
  return n;
}

/* Opens an existing repository (bare or not) at dir, no parent search. */
static int open_repo(git_repository **repo, const char *dir) {
  return git_repository_open_ext(repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
}

static int empty_or_absent(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT;
  struct dirent *de;
  int empty = 1;
  while (empty && (de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) empty = 0;
  closedir(d);
  return empty;
}

/* fetch(url, cache_dir [, ref]) -> sha, downloaded | nil, msg */
static int git_fetch(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *dir = luaL_checkstring(L, 2);
  const char *ref = luaL_optstring(L, 3, "HEAD");
  check_ref(L, 3, ref);
  if (missing_path(L, url)) return 2;
  struct res *r = new_res(L);
  int n, e;
  if (git_repository_open_bare(&r->repo, dir) < 0) {
    git_error_clear();
    if (!empty_or_absent(dir)) { /* never scatter a repository into a used directory */
      n = fail(L, dir, "exists and is not a bare git repository");
      goto done;
    }
    e = git_repository_init(&r->repo, dir, 1);
    if (e < 0) {
      n = fail_git(L, dir, e);
      goto done;
    }
  }
  e = new_remote(&r->remote, r->repo, url);
  if (e == 0) e = connect(r);
  git_oid id;
  int found = e == 0 ? match_ref(r->remote, ref, &id) : -1;
  if (found <= 0) {
    n = found < 0 ? fail_git(L, url, e) : ref_not_found(L, url, ref);
    goto done;
  }
  int downloaded = 0;
  if (git_object_lookup(&r->obj, r->repo, &id, GIT_OBJECT_ANY) < 0) {
    git_error_clear();
    char *specs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
    git_strarray refspecs = {specs, 2};
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the refspec has them */
    fo.update_fetchhead = 0;
    e = git_remote_fetch(r->remote, &refspecs, &fo, "phoenix fetch");
    if (e < 0) {
      n = fail_git(L, url, e);
      goto done;
    }
    downloaded = 1;
    if (git_object_lookup(&r->obj, r->repo, &id, GIT_OBJECT_ANY) < 0) {
      char hex[GIT_OID_HEXSZ + 1];
      git_oid_tostr(hex, sizeof hex, &id);
      lua_pushfstring(L, "commit %s is not on any branch or tag of the remote", hex);
      n = fail(L, url, lua_tostring(L, -1));
      goto done;
    }
  }
  e = git_object_peel(&r->peeled, r->obj, GIT_OBJECT_COMMIT);
  if (e < 0) {
    n = fail_git(L, url, e);
    goto done;
  }
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, git_object_id(r->peeled));
  lua_pushstring(L, hex);
  lua_pushboolean(L, downloaded);
  n = 2;
done:
  res_free(r);
  return n;
}

/* Resolves commit in dir and finds path in its tree: r->peeled is the root
 * tree; r->entry the path's entry (NULL for the root). Returns 0 or pushes
 * nil, msg and returns 2. */
static int locate(lua_State *L, struct res *r, const char *dir, const char *commit, const char *path) {
  int e = open_repo(&r->repo, dir);
  if (e < 0) return fail_git(L, dir, e);
  e = git_revparse_single(&r->obj, r->repo, commit);
  if (e < 0) {
    git_error_clear();
    lua_pushfstring(L, "commit '%s' not found", commit);
    return fail(L, dir, lua_tostring(L, -1));
  }
  e = git_object_peel(&r->peeled, r->obj, GIT_OBJECT_TREE);
  if (e < 0) return fail_git(L, dir, e);
  while (*path == '/') path++;
  if (*path == '\0') return 0;
  e = git_tree_entry_bypath(&r->entry, (git_tree *)r->peeled, path);
  if (e < 0) {
    git_error_clear();
    lua_pushfstring(L, "%s:%s: no such file or directory", commit, path);
    return fail(L, dir, lua_tostring(L, -1));
  }
  return 0;
}

/* read_file(dir, commit, path) -> content | nil, msg */
static int git_read_file(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  const char *commit = luaL_checkstring(L, 2);
  const char *path = luaL_checkstring(L, 3);
  struct res *r = new_res(L);
  int n = locate(L, r, dir, commit, path);
  if (n) goto done;
  if (r->entry == NULL || git_tree_entry_type(r->entry) != GIT_OBJECT_BLOB) {
    lua_pushfstring(L, "%s:%s: not a file", commit, path);
    n = fail(L, dir, lua_tostring(L, -1));
    goto done;
  }
  int e = git_blob_lookup(&r->blob, r->repo, git_tree_entry_id(r->entry));
  if (e < 0) {
    n = fail_git(L, dir, e);
    goto done;
  }
  lua_pushlstring(L, git_blob_rawcontent(r->blob), (size_t)git_blob_rawsize(r->blob));
  n = 1;
done:
  res_free(r);
  return n;
}

static const char *type_name(git_object_t t) {
  switch (t) {
  case GIT_OBJECT_BLOB: return "blob";
  case GIT_OBJECT_TREE: return "tree";
  case GIT_OBJECT_COMMIT: return "commit"; /* a submodule */
  default: return "other";
  }
}

/* ls_tree(dir, commit [, path]) -> {{name, type, mode, id}, ...} | nil, msg */
static int git_ls_tree(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  const char *commit = luaL_checkstring(L, 2);
  const char *path = luaL_optstring(L, 3, "");
  struct res *r = new_res(L);
  int n = locate(L, r, dir, commit, path);
  if (n) goto done;
  const git_tree *tree = (const git_tree *)r->peeled;
  if (r->entry) {
    if (git_tree_entry_type(r->entry) != GIT_OBJECT_TREE) {
      lua_pushfstring(L, "%s:%s: not a directory", commit, path);
      n = fail(L, dir, lua_tostring(L, -1));
      goto done;
    }
    int e = git_tree_lookup(&r->subtree, r->repo, git_tree_entry_id(r->entry));
    if (e < 0) {
      n = fail_git(L, dir, e);
      goto done;
    }
    tree = r->subtree;
  }
  size_t count = git_tree_entrycount(tree);
  lua_createtable(L, (int)count, 0);
  for (size_t i = 0; i < count; i++) {
    const git_tree_entry *te = git_tree_entry_byindex(tree, i);
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, git_tree_entry_id(te));
    lua_createtable(L, 0, 4);
    lua_pushstring(L, git_tree_entry_name(te));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, type_name(git_tree_entry_type(te)));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, git_tree_entry_filemode(te));
    lua_setfield(L, -2, "mode");
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "id");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  n = 1;
done:
  res_free(r);
  return n;
}

static const luaL_Reg funcs[] = {
    {"resolve", git_resolve}, {"fetch", git_fetch}, {"read_file", git_read_file},
    {"ls_tree", git_ls_tree}, {NULL, NULL},
};

/* libgit2's init is reference-counted: one per Lua state, undone by the
 * finalizer of a sentinel kept in the registry. Lua runs it before it
 * unloads this module (finalizers run in reverse order of creation, and the
 * loaded-libraries table is older), so libgit2's global state is freed
 * while its code is still mapped. */
static int git_shutdown_gc(lua_State *L) {
  int *live = lua_touserdata(L, 1);
  if (*live) {
    *live = 0;
    git_libgit2_shutdown();
  }
  return 0;
}

int luaopen_px_git(lua_State *L) {
  int *live = lua_newuserdatauv(L, sizeof *live, 0);
  *live = 0;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, git_shutdown_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (git_libgit2_init() < 0) return luaL_error(L, "px.git: libgit2 failed to initialise");
  *live = 1;
  lua_setfield(L, LUA_REGISTRYINDEX, "px.git.libgit2");
  if (luaL_newmetatable(L, RES_MT)) {
    lua_pushcfunction(L, res_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, res_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
