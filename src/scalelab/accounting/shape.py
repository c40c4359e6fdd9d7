def size_for(*a, **k):
    raise NotImplementedError
