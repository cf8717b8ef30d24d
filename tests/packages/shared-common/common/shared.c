#include "shared.h"

const char *shared_word(void) { return SHARED_WORD " source"; }
