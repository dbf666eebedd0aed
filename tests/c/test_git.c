/* px.git at the C level: a repository written with the libgit2 API (no git
 * CLI needed), resolved, fetched into a cache and read back; argument
 * checks; no libgit2 state leaking across calls that fail. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <git2.h>

#include "pxtest.h"

static char base[] = "/tmp/phoenix-test-git.XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

/* A repository at dir with one commit on main holding name = content. */
static int make_repo(const char *dir, const char *name, const char *content, char *sha) {
  git_repository *repo = NULL;
  git_treebuilder *tb = NULL;
  git_signature *sig = NULL;
  git_tree *tree = NULL;
  git_oid blob, tree_id, commit;
  int ok = git_repository_init(&repo, dir, 0) == 0 &&
           git_blob_create_from_buffer(&blob, repo, content, strlen(content)) == 0 &&
           git_treebuilder_new(&tb, repo, NULL) == 0 &&
           git_treebuilder_insert(NULL, tb, name, &blob, GIT_FILEMODE_BLOB) == 0 &&
           git_treebuilder_write(&tree_id, tb) == 0 && git_tree_lookup(&tree, repo, &tree_id) == 0 &&
           git_signature_new(&sig, "t", "t@phoenix.invalid", 1700000000, 0) == 0 &&
           git_commit_create(&commit, repo, "refs/heads/main", sig, sig, NULL, "one", tree, 0, NULL) == 0 &&
           git_repository_set_head(repo, "refs/heads/main") == 0;
  if (ok) git_oid_tostr(sha, GIT_OID_HEXSZ + 1, &commit);
  git_signature_free(sig);
  git_tree_free(tree);
  git_treebuilder_free(tb);
  git_repository_free(repo);
  return ok;
}

int main(void) {
  CHECK(mkdtemp(base) != NULL);
  git_libgit2_init();
  char src[256], sha[GIT_OID_HEXSZ + 1] = "";
  snprintf(src, sizeof src, "%s/src", base);
  CHECK(make_repo(src, "stack.yml", "image: nginx\n", sha));

  lua_State *L = pxtest_state();
  lua_pushstring(L, base);
  lua_setglobal(L, "BASE");
  lua_pushstring(L, sha);
  lua_setglobal(L, "SHA");
  CHECK_LUA(L, "G = require 'px.git'; return G.resolve(BASE .. '/src', 'main') == SHA");
  CHECK_LUA(L, "return G.resolve('file://' .. BASE .. '/src') == SHA");
  CHECK_LUA(L, "local s, d = G.fetch(BASE .. '/src', BASE .. '/cache'); return s == SHA and d == true");
  CHECK_LUA(L, "return G.read_file(BASE .. '/cache', SHA, 'stack.yml') == 'image: nginx\\n'");
  CHECK_LUA(L, "local s, d = G.fetch(BASE .. '/src', BASE .. '/cache', 'main'); return s == SHA and d == false");
  /* Failures are nil, msg, many times over (ASan checks nothing leaks). */
  CHECK_LUA(L, "for i = 1, 50 do\n"
               "  local a, e = G.resolve(BASE .. '/src', 'nope' .. i); if a or not e:find('not found') then return false end\n"
               "  local b, e2 = G.read_file(BASE .. '/cache', SHA, 'x' .. i); if b or not e2:find('no such file') then return false end\n"
               "  local c, e3 = G.fetch(BASE .. '/missing', BASE .. '/cache2'); if c or not e3:find('does not exist') then return false end\n"
               "end return true");
  /* Wrong use raises before anything is opened. */
  CHECK_LUA(L, "return not pcall(G.resolve) and not pcall(G.resolve, BASE, '') and not pcall(G.fetch, BASE)");
  CHECK_LUA(L, "return not pcall(G.read_file, BASE .. '/cache', SHA) and not pcall(G.ls_tree)");
  lua_close(L);

  CHECK(nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
  git_libgit2_shutdown();
  return pxtest_done("test_git");
}
