/*
 * abi_key.h as a program, for tests/test_guard_hash.py:
 *   abi-selftest DOT_H_FILE CFLAGS_FILE PLATFORM LEARNED_FILE
 * prints the ABI hash. LEARNED_FILE holds NUL-terminated fields, in records:
 * "L" name (a layout macro), "N" name value (neutral, with the build's value),
 * "n" name (neutral, undefined in the build), "C" name (consulted).
 */
#include "abi_key.h"

static char *slurp(const char *path, size_t *length) {
	FILE *f = fopen(path, "rb");
	if (!f)
		exit(2);
	size_t size = 0, used = 0;
	char *data = NULL;
	for (;;) {
		if (used + 4096 + 1 > size)
			data = realloc(data, size = (used + 4096 + 1) * 2);
		size_t got = fread(data + used, 1, 4096, f);
		used += got;
		if (!got)
			break;
	}
	fclose(f);
	data[used] = 0;
	if (length)
		*length = used;
	return data;
}

int main(int argc, char **argv) {
	if (argc != 5)
		return 2;
	size_t length, n = 0, i;
	char *dot_h = slurp(argv[1], NULL), *cflags = slurp(argv[2], NULL), *spec = slurp(argv[4], &length);
	const char **fields = malloc((length + 1) * sizeof(char *));
	for (i = 0; i < length; i += strlen(spec + i) + 1)
		fields[n++] = spec + i;
	const char **layout = malloc((n + 1) * sizeof(char *)), **names = malloc((n + 1) * sizeof(char *));
	const char **values = malloc((n + 1) * sizeof(char *));
	uint64_t *consulted = malloc((n + 1) * sizeof(uint64_t));
	struct abi_learned learned = {layout, 0, names, values, 0, consulted, 0};
	for (i = 0; i < n;) {
		const char *kind = fields[i++];
		if (!strcmp(kind, "L"))
			layout[learned.n_layout++] = fields[i++];
		else if (!strcmp(kind, "N")) {
			names[learned.n_neutral] = fields[i++];
			values[learned.n_neutral++] = fields[i++];
		} else if (!strcmp(kind, "n")) {
			names[learned.n_neutral] = fields[i++];
			values[learned.n_neutral++] = NULL;
		} else if (!strcmp(kind, "C")) {
			consulted[learned.n_consulted++] = abi_fnv1a64(ABI_FNV_OFFSET, fields[i], strlen(fields[i]));
			i++;
		} else
			return 2;
	}
	qsort(consulted, learned.n_consulted, sizeof(uint64_t), abi_compare_u64);
	printf("%016llx\n", (unsigned long long) abi_hash(dot_h, cflags, argv[3], &learned));
	return 0;
}
