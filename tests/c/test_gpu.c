/* px.gpu on hostile input: files that are empty, binary, huge or not what
 * they should be must give problems, never a crash or a wrong device. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxtest.h"

static char root[] = "/tmp/phoenix-test-gpu.XXXXXX";

static void put(const char *rel, const char *data, size_t len) {
  char path[512], dir[512];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  snprintf(dir, sizeof dir, "%s", path);
  for (char *p = dir + strlen(root) + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(dir, 0755);
      *p = '/';
    }
  FILE *f = fopen(path, "w");
  if (f) {
    fwrite(data, 1, len, f);
    fclose(f);
  }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void device(const char *addr, const char *vendor, const char *dev, const char *cls) {
  char rel[256];
  snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/vendor", addr);
  put(rel, vendor, strlen(vendor));
  snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/device", addr);
  put(rel, dev, strlen(dev));
  snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/class", addr);
  put(rel, cls, strlen(cls));
}

int main(void) {
  CHECK(mkdtemp(root) != NULL);
  device("0000:01:00.0", "0x10de\n", "0x2204\n", "0x030000\n");
  device("0000:02:00.0", "", "0x2204\n", "0x030000\n");             /* empty vendor */
  device("0000:03:00.0", "0x10\0de\n", "0x2204\n", "0x030000\n");  /* NUL inside */
  device("0000:04:00.0", "0x10de\n", "0x22045\n", "0x030000\n");   /* too long */
  device("0000:05:00.0", "0x10de\n", "0x2204\n", "0x03zz00\n");    /* not hex */
  static char big[100000];
  memset(big, 'f', sizeof big);
  put("sys/bus/pci/devices/0000:06:00.0/vendor", big, sizeof big); /* huge */
  put("proc/cmdline", big, sizeof big);
  put("proc/driver/nvidia/version", "NVRM version: NVIDIA 1. 2.. .3 x\n", 34);
  put("proc/modules", "\n\n\nvfio\n vfio_pci\n", 18);
  char linkpath[512];
  snprintf(linkpath, sizeof linkpath, "%s/sys/bus/pci/devices/0000:01:00.0/driver", root);
  CHECK(symlink("../../../bus/pci/drivers/", linkpath) == 0); /* trailing slash */
  snprintf(linkpath, sizeof linkpath, "%s/sys/bus/pci/devices/0000:01:00.0/iommu_group", root);
  CHECK(symlink("/kernel/iommu_groups/", linkpath) == 0); /* basename "iommu_groups" */

  lua_State *L = pxtest_state();
  lua_pushstring(L, root);
  lua_setglobal(L, "ROOT");
  CHECK_LUA(L, "F = assert(require('px.gpu').scan{root = ROOT}); return #F.devices == 1");
  CHECK_LUA(L, "local d = F.devices[1]; return d.address == '0000:01:00.0' and d.vendor == '10de' "
               "and d.driver == 'drivers' and d.iommu_group == nil");
  CHECK_LUA(L, "return #F.problems == 7");
  CHECK_LUA(L, "return F.problems[1]:find('0000:01:00.0/iommu_group: expected a link to an IOMMU group "
               "number, got .iommu_groups.') ~= nil");
  CHECK_LUA(L, "return F.problems[2]:find('0000:02:00.0/vendor: expected a 4%-digit hex id') ~= nil");
  CHECK_LUA(L, "return F.driver_version == nil and F.problems[7]:find('version: no') ~= nil");
  CHECK_LUA(L, "return #F.cmdline == 8191 and F.iommu_cmdline == false");
  CHECK_LUA(L, "return #F.vfio_modules == 1 and F.vfio_modules[1] == 'vfio'");
  CHECK_LUA(L, "return select(2, require('px.gpu').iommu_group(ROOT, 1)):find('no such IOMMU group') ~= nil");
  lua_close(L);

  CHECK(nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
  return pxtest_done("test_gpu");
}
