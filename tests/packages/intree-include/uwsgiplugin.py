NAME = 'intree'
GCC_LIST = ['intree']
