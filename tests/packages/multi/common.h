/* Included by alpha.c and beta.c only. */
#define COMMON_WORD "common"
