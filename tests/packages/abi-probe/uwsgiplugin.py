NAME = 'probe'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['probe']
