"""Network builders: the contract (:mod:`.builder`), layers, and the builtin U-Nets.

* :mod:`.builder` - the NetworkBuilder contract planners, trainers and plugins share
* :mod:`.layers` - norms/non-linearities/convs resolved from JSON string specs
* :mod:`.blocks`, :mod:`.encoders`, :mod:`.unet` - dimension-agnostic U-Net parts (import torch)
* :mod:`.topology` - nnU-Net v2's pooling/kernel proposal (pure Python)
* :mod:`.generic_unet`, :mod:`.residual_unet` - the builtin builders
* :mod:`.memory` - training-memory estimate traced on the meta device, for any network

Importing this package (or the builders) does not import torch.
"""
