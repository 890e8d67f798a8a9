/* fuzz_unpack.c — libFuzzer target for the layer unpacker (src/image_unpack.c):
 * arbitrary bytes as a tar (plain, gzip or zstd) unpacked in overlay mode into
 * a fresh root next to an "outside" directory; whatever the archive holds,
 * nothing may appear outside (abort() if it does). Build: tests/fuzz/Makefile. */
#include <archive.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64], root[96], outside[96];

static bool
dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	if (d)
		closedir(d);
	return empty;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base[0]) {
		strcpy(base, "/tmp/v6-fuzz-unpack-XXXXXX");
		if (!mkdtemp(base))
			abort();
		snprintf(root, sizeof root, "%s/root", base);
		snprintf(outside, sizeof outside, "%s/outside", base);
		mkdir(outside, 0755);
	}
	mkdir(root, 0755);
	struct archive *a = img__archive_reader();
	char *msg = NULL;
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK)
		img__unpack_archive(a, root, true, &msg);
	archive_read_free(a);
	free(msg);
	if (!dir_empty(outside))
		abort();	/* an entry escaped the root */
	util_remove_tree(root);
	return 0;
}
