"""Network builders: the contract (:mod:`.builder`), layers, and the builtin U-Nets."""
