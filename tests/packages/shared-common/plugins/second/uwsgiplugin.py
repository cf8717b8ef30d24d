NAME = 'second'
GCC_LIST = ['second']
