NAME = 'newer'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['newer']
