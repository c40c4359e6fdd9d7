"""Techniques that let a small model compete with a large one, each ending as a point.

* :mod:`scalelab.techniques.distill`: knowledge distillation (the ``[distill]`` run section).
* :mod:`scalelab.techniques.compress`: pruning, quantization, low rank and sharing of a
  finished run, written as a derived run.
"""
