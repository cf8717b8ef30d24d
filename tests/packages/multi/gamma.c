const char *gamma_word(void) { return "gamma"; }
