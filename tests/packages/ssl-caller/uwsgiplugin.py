NAME = 'sslcaller'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['sslcaller']
