"""sgdlab's instruments in a training loop that is not sgdlab's own.

`attach(model, optimizer, out=..., probes=[...])` returns a `Lab`; wrap each step of your loop
in `with lab.step(x, y):` and call `lab.close()` at the end. The run directory it writes is the
one `sgdlab.run` writes, so `sgdlab show`, `report`, `export` and `load_run` read it unchanged.
`replay(train_fn)` runs a deterministic training function twice to measure what needs the
final iterate θ* (the γ-principle). The Lightning and Hugging Face callbacks live in
`sgdlab.integrations.lightning` and `sgdlab.integrations.transformers` (optional extras
`sgdlab[lightning]`, `sgdlab[transformers]`; imported only when used).
"""

from .lab import Lab, ReplayMismatch, StepHandle, attach
from .twopass import replay

__all__ = ["Lab", "ReplayMismatch", "StepHandle", "attach", "replay"]
