NAME = 'first'
CFLAGS = ['-I../common']
GCC_LIST = ['first', '../common/shared.c']
