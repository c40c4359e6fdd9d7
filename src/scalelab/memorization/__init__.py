"""How much N parameters hold: capacity on corpora of known content, and extraction.

* :mod:`~scalelab.memorization.capacity`: bits a trained model stores about a ``facts``
  or ``bits`` corpus (Allen-Zhu and Li 2024; Morris et al. 2025), at fp32, int8, int4.
* :mod:`~scalelab.memorization.canaries`: random sequences inserted into the training
  stream at known repetition counts (``data.canaries``).
* :mod:`~scalelab.memorization.extraction`: greedy k-extractable share (Carlini et al.
  2022) of canaries, training windows and (the control) validation windows.
* :mod:`~scalelab.memorization.analysis`: the fitted slope of bits against N.

Torch is imported inside the functions that run a model, so this package is light.
"""
