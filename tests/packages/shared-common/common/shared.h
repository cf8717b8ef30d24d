/* Shared by both plugins of the project: reached through -I../common and ../../common/shared.h. */
#define SHARED_WORD "shared"
const char *shared_word(void);
