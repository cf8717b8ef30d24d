/*
 * Compiled into every plugin by uwsgi-plugin-backend.
 *
 * uWSGI checks nothing when it loads a plugin: it reads the plugin's structs
 * as laid out by the uwsgi.h and -D flags the plugin was compiled with. This
 * constructor runs inside dlopen(), before uWSGI reads the plugin struct. It
 * asks the loading uWSGI for its build through functions the binary exports
 * (uwsgi_get_dot_h, uwsgi_get_cflags; never through struct fields), computes
 * the ABI hash exactly as the runtime module does in Python (abi_canonical:
 * the uwsgi.h hash, the platform line, the -D tokens of the macros found to
 * change layouts), and on mismatch clears the plugin's name (the first field
 * of struct uwsgi_plugin, in the plugin's own memory) so uWSGI drops the
 * plugin instead of crashing. The platform line is the one the plugin was
 * built for, with the C library of the loading process put in (glibc when
 * gnu_get_libc_version resolves, else musl): machine and word size cannot
 * differ once dlopen() succeeded.
 *
 * Built with -DGUARD_SELFTEST it is instead a small program that prints the
 * hash of given inputs, so the tests can compare it with the Python code.
 *
 * uwsgi_plugin_guard.h, generated per build, defines:
 *   GUARD_PLUGIN_SYMBOL   the plugin struct, e.g. hello_plugin
 *   GUARD_PLUGIN_NAME     "hello"
 *   GUARD_HASH            the expected ABI hash, e.g. 0x11060c781602aa76ULL
 *   GUARD_KEY, GUARD_SUMMARY   the ABI key and summary the plugin was built for
 *   GUARD_TESTED          " NAME NAME ... ": the macros that change a layout of uwsgi.h
 *   GUARD_PLATFORM_HEAD, GUARD_PLATFORM_TAIL   the platform line around the libc family:
 *                         "machine=x86_64 class=64-le libc=" and " time_t=8 off_t=8"
 *   GUARD_LIBC            "glibc" or "musl": the C library the plugin was built for
 *   GUARD_NOTABLE         " ssl pcre ... ": features named in summaries
 *   GUARD_FIX             what to do about a mismatch
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GUARD_SELFTEST
#include "uwsgi_plugin_guard.h"

extern char *uwsgi_get_cflags(void) __attribute__((weak));
extern char *uwsgi_get_dot_h(void) __attribute__((weak));
extern void uwsgi_log(const char *, ...) __attribute__((weak));
extern const char *gnu_get_libc_version(void) __attribute__((weak));

/* Only the first field, the name pointer, is ever touched. */
extern char *GUARD_PLUGIN_SYMBOL;
#endif

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a64(uint64_t value, const char *data, size_t len) {
	size_t i;
	for (i = 0; i < len; i++) {
		value ^= (unsigned char) data[i];
		value *= FNV_PRIME;
	}
	return value;
}

static int compare_tokens(const void *a, const void *b) {
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Is NAME (len bytes) one of the space-separated words of LIST (" a b ")? */
static int in_list(const char *list, const char *name, size_t len) {
	const char *p = list;
	if (!len) /* a bare -D names no macro; "  " (an empty list) must not match it */
		return 0;
	while ((p = strstr(p, " ")) != NULL) {
		p++;
		if (!strncmp(p, name, len) && p[len] == ' ')
			return 1;
	}
	return 0;
}

static size_t macro_name_length(const char *token) {
	const char *equal = strchr(token, '=');
	return equal ? (size_t) (equal - token - 2) : strlen(token) - 2;
}

/* Split CFLAGS on white space (in place) into its -D tokens, sorted. */
static size_t define_tokens(char *cflags, char **tokens, size_t max) {
	size_t count = 0;
	char *p = cflags;
	while (*p) {
		while (*p && isspace((unsigned char) *p))
			*p++ = 0;
		if (!*p)
			break;
		char *token = p;
		while (*p && !isspace((unsigned char) *p))
			p++;
		if (*p)
			*p++ = 0;
		if (!strncmp(token, "-D", 2) && count < max)
			tokens[count++] = token;
	}
	qsort(tokens, count, sizeof(char *), compare_tokens);
	return count;
}

/* The ABI hash (runtime module: abi_hash) of a uwsgi.h text, the -D tokens of
 * its CFLAGS (sorted), a platform line and the list of macros that count. */
static uint64_t abi_hash(const char *dot_h, char **tokens, size_t count, const char *platform, const char *tested) {
	size_t dot_h_len = strlen(dot_h), i;
	while (dot_h_len && isspace((unsigned char) dot_h[dot_h_len - 1]))
		dot_h_len--;
	char line[64];
	snprintf(line, sizeof(line), "dot_h=%016llx\nplatform=", (unsigned long long) fnv1a64(FNV_OFFSET, dot_h, dot_h_len));
	uint64_t hash = fnv1a64(FNV_OFFSET, line, strlen(line));
	hash = fnv1a64(hash, platform, strlen(platform));
	hash = fnv1a64(hash, "\n", 1);
	for (i = 0; i < count; i++) {
		if (!in_list(tested, tokens[i] + 2, macro_name_length(tokens[i])))
			continue;
		hash = fnv1a64(hash, tokens[i], strlen(tokens[i]));
		hash = fnv1a64(hash, "\n", 1);
	}
	return hash;
}

#ifdef GUARD_SELFTEST
static char *slurp(const char *path) {
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
	return data;
}

/* guard-selftest DOT_H_FILE CFLAGS_FILE PLATFORM TESTED: print the ABI hash. */
int main(int argc, char **argv) {
	if (argc != 5)
		return 2;
	char *dot_h = slurp(argv[1]), *cflags = slurp(argv[2]);
	char *tokens[4096];
	size_t count = define_tokens(cflags, tokens, 4096);
	printf("%016llx\n", (unsigned long long) abi_hash(dot_h, tokens, count, argv[3], argv[4]));
	return 0;
}
#else
static void say(const char *line) {
	if (uwsgi_log)
		uwsgi_log("%s\n", line);
	else
		fprintf(stderr, "%s\n", line);
}

/* "uWSGI 2.0.21-debian +ssl -pcre ...", like the runtime module's summary. */
static void summary(char **tokens, size_t count, char *out, size_t size) {
	const char *version = "unknown";
	char version_buf[128] = "";
	size_t i;
	for (i = 0; i < count; i++) {
		if (!strncmp(tokens[i], "-DUWSGI_VERSION=", 16)) {
			const char *v = tokens[i] + 16;
			size_t j = 0;
			for (; *v && j < sizeof(version_buf) - 1; v++)
				if (*v != '"' && *v != '\\')
					version_buf[j++] = *v;
			version_buf[j] = 0;
			version = version_buf;
		}
	}
	snprintf(out, size, "uWSGI %s", version);
	const char *sign;
	for (sign = "+"; sign; sign = (*sign == '+') ? "-" : NULL) {
		const char *p = GUARD_NOTABLE;
		while (*p) {
			while (*p == ' ')
				p++;
			size_t len = strcspn(p, " ");
			if (!len)
				break;
			char macro[64];
			snprintf(macro, sizeof(macro), "-DUWSGI_%.*s", (int) len, p);
			char *m;
			for (m = macro + 8; *m; m++)
				*m = (char) toupper((unsigned char) *m);
			int defined = 0;
			for (i = 0; i < count; i++)
				if (!strncmp(tokens[i], macro, strlen(macro)) && (tokens[i][strlen(macro)] == 0 || tokens[i][strlen(macro)] == '='))
					defined = 1;
			if (defined == (*sign == '+')) {
				size_t used = strlen(out);
				snprintf(out + used, size - used, " %s%.*s", sign, (int) len, p);
			}
			p += len;
		}
	}
}

__attribute__((constructor)) static void uwsgi_plugin_backend_guard(void) {
	if (!uwsgi_get_cflags || !uwsgi_get_dot_h)
		return; /* not inside uWSGI (e.g. a tool inspecting the .so) */
	char *dot_h = uwsgi_get_dot_h();
	char *cflags = uwsgi_get_cflags();
	if (!dot_h || !cflags)
		return;
	const char *libc = gnu_get_libc_version ? "glibc" : "musl";
	char platform[512];
	snprintf(platform, sizeof(platform), "%s%s%s", GUARD_PLATFORM_HEAD, libc, GUARD_PLATFORM_TAIL);
	char *tokens[512];
	size_t count = define_tokens(cflags, tokens, 512);
	uint64_t hash = abi_hash(dot_h, tokens, count, platform, GUARD_TESTED);
	if (hash != GUARD_HASH) {
		char loading[1024], line[4096];
		summary(tokens, count, loading, sizeof(loading));
		if (strcmp(libc, GUARD_LIBC)) {
			size_t used = strlen(loading);
			snprintf(loading + used, sizeof(loading) - used, " on %s, not %s", libc, GUARD_LIBC);
		}
		snprintf(line, sizeof(line),
			"uwsgi-plugin-backend: refusing plugin %s: it was built for %s (ABI key %s), "
			"this is %s (ABI hash %016llx); loading it could crash uWSGI. %s",
			GUARD_PLUGIN_NAME, GUARD_SUMMARY, GUARD_KEY, loading, (unsigned long long) hash, GUARD_FIX);
		say(line);
		GUARD_PLUGIN_SYMBOL = NULL;
	}
	if (*dot_h)
		free(dot_h);
	free(cflags);
}
#endif
