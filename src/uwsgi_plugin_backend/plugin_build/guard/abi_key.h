/*
 * The ABI hash of a uWSGI build, computed in C exactly as the runtime module
 * (runtime/_uwsgi_plugin.py: shell_words, read_flags, abi_lines,
 * hash_of_parts) computes it in Python: the loader of every plugin
 * (plugin_loader.c) compares it with the hash its build was made for before
 * any code of the plugin runs. tests/test_guard_hash.py compiles this
 * file with -DGUARD_SELFTEST and compares the two on generated input.
 *
 * CFLAGS are read as the shell hands them to gcc (uwsgiconfig.py puts them on
 * a shell command line), then as gcc reads them: -D/-U joined or as two
 * words, inside -Wp, and after -Xpreprocessor, a later one winning. What
 * counts is decided with what the build learned (struct abi_learned).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct abi_learned {
	const char *const *layout; /* macros that change a layout */
	size_t n_layout;
	const char *const *neutral_names; /* macros tried and found neutral ... */
	const char *const *neutral_values; /* ... with the build's value (NULL: undefined there) */
	size_t n_neutral;
	const uint64_t *consulted; /* FNV-1a of each macro the preprocessor consulted, sorted */
	size_t n_consulted;
};

#define ABI_FNV_OFFSET 0xcbf29ce484222325ULL
#define ABI_FNV_PRIME 0x100000001b3ULL

static uint64_t abi_fnv1a64(uint64_t value, const char *data, size_t len) {
	size_t i;
	for (i = 0; i < len; i++) {
		value ^= (unsigned char) data[i];
		value *= ABI_FNV_PRIME;
	}
	return value;
}

/* The shell's blanks; \v \f \r are word characters to it. */
static int abi_space(char c) {
	return c == ' ' || c == '\t' || c == '\n';
}

/* The words a POSIX shell makes of TEXT, unquoted in place; returns how many. */
static size_t abi_shell_words(char *text, char **words, size_t max) {
	char *r = text, *w = text;
	size_t count = 0;
	while (*r) {
		if (abi_space(*r)) {
			r++;
			continue;
		}
		char *start = w;
		while (*r && !abi_space(*r)) {
			if (*r == '\\' && r[1]) {
				if (r[1] != '\n')
					*w++ = r[1];
				r += 2;
			} else if (*r == '\'') {
				r++;
				while (*r && *r != '\'')
					*w++ = *r++;
				if (*r)
					r++;
			} else if (*r == '"') {
				r++;
				while (*r && *r != '"') {
					if (*r == '\\' && r[1] && strchr("$`\"\\\n", r[1])) {
						if (r[1] != '\n')
							*w++ = r[1];
						r += 2;
					} else
						*w++ = *r++;
				}
				if (*r)
					r++;
			} else
				*w++ = *r++;
		}
		int at_end = !*r;
		*w++ = 0;
		if (!at_end)
			r++;
		if (count < max)
			words[count++] = start;
		if (at_end)
			break;
	}
	return count;
}

static const char *const abi_argument_flags[] = {"-D", "-U", "-I", "-isystem", "-idirafter", "-iquote", "-include",
	"-imacros", "-isysroot", "--sysroot", "-MF", "-MT", "-MQ", "-x", "-Xpreprocessor", "-Xlinker", "-Xassembler", "-L",
	"-l", "-o", "-T", "-u", "-z", "-e", "-A", "-B", "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-aux-info",
	"-dumpbase", "-dumpbase-ext", "-dumpdir", "--param", "-imultilib", "-imultiarch", "-iplugindir", "-wrapper", "-specs",
	NULL};
/* Inside -Wp, the preprocessor's own: -MD and -MMD name a file there. */
static const char *const abi_preprocessor_argument_flags[] = {"-D", "-U", "-I", "-isystem", "-idirafter", "-iquote",
	"-include", "-imacros", "-isysroot", "-MF", "-MT", "-MQ", "-MD", "-MMD", "-o", "-A", "-iprefix", "-iwithprefix",
	"-iwithprefixbefore", "-imultilib", "-imultiarch", "-dumpbase", "-dumpbase-ext", "-dumpdir", "-aux-info", "--param",
	"-auxbase", "-auxbase-strip", NULL};
static const char *const abi_neutral_flags[] = {"-pipe", "-pthread", "-w", "-fPIC", "-fpic", "-fPIE", "-fpie",
	"-fno-pic", "-fno-pie", "-fno-PIC", "-fno-PIE", "-fexceptions", "-fno-exceptions", "-fasynchronous-unwind-tables",
	"-fno-asynchronous-unwind-tables", "-funwind-tables", "-fno-strict-aliasing", "-fstrict-aliasing", "-fwrapv",
	"-fno-strict-overflow", "-fno-common", "-fcommon", "-fno-plt", "-ffunction-sections", "-fdata-sections",
	"-fno-semantic-interposition", "-fno-delete-null-pointer-checks", "-fomit-frame-pointer",
	"-fno-omit-frame-pointer", "-fstack-clash-protection", "-fno-stack-clash-protection", "-fno-stack-protector",
	"-frecord-gcc-switches", "-fno-ident", "-fhardened", NULL};
static const char *const abi_neutral_prefixes[] = {"-O", "-g", "-W", "-I", "-isystem", "-idirafter", "-iquote",
	"-isysroot", "--sysroot", "-L", "-l", "-MD", "-MMD", "-MF", "-MT", "-MQ", "-MP", "-fstack-protector",
	"-fcf-protection", "-ffile-prefix-map=", "-fdebug-prefix-map=", "-fmacro-prefix-map=", "-fdiagnostics-", "-flto",
	"-fno-lto", "-fprofile-", "-fsanitize", "-fno-sanitize", "-fvisibility", "-fzero-call-used-regs", "-mtune=", NULL};

static int abi_listed(const char *const *list, const char *word) {
	for (; *list; list++)
		if (!strcmp(*list, word))
			return 1;
	return 0;
}

struct abi_flag {
	const char *prefix, *option, *argument;
};
struct abi_define {
	const char *name, *value;
};
struct abi_reading {
	struct abi_define *defines;
	size_t n_defines, max_defines;
	struct abi_flag *flags;
	size_t n_flags, max_flags;
};

static void abi_undefine(struct abi_reading *reading, const char *name) {
	size_t i;
	for (i = 0; i < reading->n_defines; i++) {
		if (!strcmp(reading->defines[i].name, name)) {
			memmove(&reading->defines[i], &reading->defines[i + 1], (reading->n_defines - i - 1) * sizeof(struct abi_define));
			reading->n_defines--;
			return;
		}
	}
}

/* Read WORDS into READING. At the top level (PREFIX ""), -Wp, and -Xpreprocessor
 * words are read after all others: gcc's driver hands them to the preprocessor
 * after every plain -D and -U. */
static void abi_read_words(struct abi_reading *reading, char **words, size_t n, const char *prefix) {
	size_t i = 0, n_later = 0;
	size_t *later = *prefix ? NULL : malloc((n + 1) * sizeof(size_t)); /* where those words are, times 2, +1 after -Xpreprocessor */
	if (!*prefix && !later)
		return;
	while (i < n) {
		char *word = words[i], *argument = NULL, *text = NULL;
		char kind = 0;
		if (abi_listed(*prefix ? abi_preprocessor_argument_flags : abi_argument_flags, word) && i + 1 < n) {
			argument = words[i + 1];
			i += 2;
		} else
			i++;
		if (argument && (!strcmp(word, "-D") || !strcmp(word, "-U"))) {
			kind = word[1];
			text = argument;
		} else if (!strncmp(word, "-D", 2) || !strncmp(word, "-U", 2)) {
			kind = word[1];
			text = word + 2;
		}
		size_t name_len = text ? strcspn(text, "=(") : 0, j;
		for (j = 0; j < name_len; j++) /* gcc makes odd macros of odd names: such a word counts as an option */
			if (!(text[j] == '_' || (text[j] >= 'A' && text[j] <= 'Z') || (text[j] >= 'a' && text[j] <= 'z')
			      || (j && text[j] >= '0' && text[j] <= '9')))
				name_len = 0;
		if (kind == 'D' && name_len) {
			char *equal = strchr(text, '=');
			const char *value = equal ? equal + 1 : "1";
			text[name_len] = 0;
			abi_undefine(reading, text);
			if (reading->n_defines < reading->max_defines) {
				reading->defines[reading->n_defines].name = text;
				reading->defines[reading->n_defines++].value = value;
			}
		} else if (kind == 'U' && name_len) {
			text[name_len] = 0;
			abi_undefine(reading, text);
			if (reading->n_defines < reading->max_defines) { /* undone: it counts (a built-in such as __linux__) */
				reading->defines[reading->n_defines].name = text;
				reading->defines[reading->n_defines++].value = NULL;
			}
		} else if (!*prefix && !strncmp(word, "-Wp,", 4)) {
			later[n_later++] = (i - 1) * 2;
		} else if (!*prefix && !strcmp(word, "-Xpreprocessor") && argument) {
			later[n_later++] = (i - 1) * 2 + 1; /* the argument's place: read on its own */
		} else if (reading->n_flags < reading->max_flags) {
			reading->flags[reading->n_flags].prefix = prefix;
			reading->flags[reading->n_flags].option = word;
			reading->flags[reading->n_flags++].argument = argument;
		}
	}
	for (i = 0; i < n_later; i++) {
		char *word = words[later[i] / 2];
		if (later[i] % 2) {
			abi_read_words(reading, &words[later[i] / 2], 1, "-Xpreprocessor ");
			continue;
		}
		size_t count = 1, j;
		for (j = 4; word[j]; j++)
			count += word[j] == ',';
		char **pieces = malloc(count * sizeof(char *));
		if (!pieces)
			continue;
		char *p = word + 4;
		for (count = 0;;) {
			char *comma = strchr(p, ',');
			pieces[count++] = p;
			if (!comma)
				break;
			*comma = 0;
			p = comma + 1;
		}
		abi_read_words(reading, pieces, count, "-Wp,");
		free(pieces);
	}
	free(later);
}

/* OUT = prefix + option [+ " " + argument], when it fits. */
static void abi_flag_text(const struct abi_flag *flag, int with_prefix, char *out, size_t size) {
	snprintf(out, size, "%s%s%s%s", with_prefix ? flag->prefix : "", flag->option, flag->argument ? " " : "",
		flag->argument ? flag->argument : "");
}

static int abi_neutral_flag(const struct abi_flag *flag, char *scratch, size_t size) {
	const char *const *prefix;
	abi_flag_text(flag, 0, scratch, size);
	if (abi_listed(abi_neutral_flags, scratch))
		return 1;
	if (!strncmp(scratch, "-Wp,", 4))
		return 0;
	for (prefix = abi_neutral_prefixes; *prefix; prefix++)
		if (!strncmp(scratch, *prefix, strlen(*prefix)))
			return 1;
	return 0;
}

static int abi_string_literal(const char *value) {
	size_t len = value ? strlen(value) : 0;
	return len >= 2 && value[0] == '"' && value[len - 1] == '"';
}

static int abi_compare_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

static int abi_counted(const struct abi_learned *learned, const char *name, const char *value) {
	size_t i;
	for (i = 0; i < learned->n_layout; i++)
		if (!strcmp(learned->layout[i], name))
			return 1;
	for (i = 0; i < learned->n_neutral; i++) {
		if (strcmp(learned->neutral_names[i], name))
			continue;
		const char *built = learned->neutral_values[i];
		int compatible = !value || (built && !strcmp(value, built)) || (!built && !strcmp(value, "1"))
			|| (abi_string_literal(value) && abi_string_literal(built));
		return !compatible;
	}
	uint64_t key = abi_fnv1a64(ABI_FNV_OFFSET, name, strlen(name));
	return learned->n_consulted && bsearch(&key, learned->consulted, learned->n_consulted, sizeof(uint64_t), abi_compare_u64);
}

static int abi_compare_strings(const void *a, const void *b) {
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The ABI hash of a uwsgi.h text and CFLAGS for a platform line and what a build learned; 0 when out of memory. */
static uint64_t abi_hash(const char *dot_h, const char *cflags, const char *platform, const struct abi_learned *learned) {
	size_t dot_h_len = strlen(dot_h), len = strlen(cflags), i, n_lines = 0;
	while (dot_h_len && strchr(" \t\n\v\f\r", dot_h[dot_h_len - 1])) /* as Python's bytes.rstrip() */
		dot_h_len--;
	char *text = malloc(len + 1), **words = malloc((len / 2 + 2) * sizeof(char *));
	struct abi_reading reading = {malloc((len / 2 + 2) * sizeof(struct abi_define)), 0, len / 2 + 2,
		malloc((len / 2 + 2) * sizeof(struct abi_flag)), 0, len / 2 + 2};
	char **lines = malloc((len / 2 + 2) * sizeof(char *));
	char *scratch = malloc(len + 64);
	uint64_t hash = 0;
	if (!text || !words || !reading.defines || !reading.flags || !lines || !scratch)
		goto end;
	memcpy(text, cflags, len + 1);
	abi_read_words(&reading, words, abi_shell_words(text, words, len / 2 + 2), "");
	for (i = 0; i < reading.n_defines; i++) {
		const struct abi_define *define = &reading.defines[i];
		if (!abi_counted(learned, define->name, define->value))
			continue;
		size_t size = strlen(define->name) + (define->value ? strlen(define->value) : 0) + 4;
		lines[n_lines] = malloc(size);
		if (!lines[n_lines])
			goto end;
		if (define->value)
			snprintf(lines[n_lines++], size, "-D%s=%s", define->name, define->value);
		else
			snprintf(lines[n_lines++], size, "-U%s", define->name);
	}
	qsort(lines, n_lines, sizeof(char *), abi_compare_strings);
	char line[64];
	snprintf(line, sizeof(line), "dot_h=%016llx\nplatform=", (unsigned long long) abi_fnv1a64(ABI_FNV_OFFSET, dot_h, dot_h_len));
	hash = abi_fnv1a64(ABI_FNV_OFFSET, line, strlen(line));
	hash = abi_fnv1a64(hash, platform, strlen(platform));
	hash = abi_fnv1a64(hash, "\n", 1);
	for (i = 0; i < n_lines; i++) {
		hash = abi_fnv1a64(hash, lines[i], strlen(lines[i]));
		hash = abi_fnv1a64(hash, "\n", 1);
	}
	for (i = 0; i < reading.n_flags; i++) {
		if (abi_neutral_flag(&reading.flags[i], scratch, len + 64))
			continue;
		abi_flag_text(&reading.flags[i], 1, scratch, len + 64);
		hash = abi_fnv1a64(hash, scratch, strlen(scratch));
		hash = abi_fnv1a64(hash, "\n", 1);
	}
end:
	if (lines)
		for (i = 0; i < n_lines; i++)
			free(lines[i]);
	free(lines);
	free(scratch);
	free(reading.defines);
	free(reading.flags);
	free(words);
	free(text);
	return hash;
}

/* Is MACRO defined by CFLAGS (for the human summary)?  VALUE gets its value. */
__attribute__((unused)) static int abi_defined(const char *cflags, const char *macro, char *value, size_t size) {
	size_t len = strlen(cflags), i;
	char *text = malloc(len + 1), **words = malloc((len / 2 + 2) * sizeof(char *));
	struct abi_reading reading = {malloc((len / 2 + 2) * sizeof(struct abi_define)), 0, len / 2 + 2,
		malloc((len / 2 + 2) * sizeof(struct abi_flag)), 0, len / 2 + 2};
	int found = 0;
	if (text && words && reading.defines && reading.flags) {
		memcpy(text, cflags, len + 1);
		abi_read_words(&reading, words, abi_shell_words(text, words, len / 2 + 2), "");
		for (i = 0; i < reading.n_defines && !found; i++) {
			if (!strcmp(reading.defines[i].name, macro) && reading.defines[i].value) {
				found = 1;
				if (value)
					snprintf(value, size, "%s", reading.defines[i].value);
			}
		}
	}
	free(reading.defines);
	free(reading.flags);
	free(words);
	free(text);
	return found;
}
