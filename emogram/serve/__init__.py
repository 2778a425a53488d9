"""``emogram serve``'s parts: where it listens (``place``), the command's side (``client``), the
door that reads requests (``door``) and the thread that answers them (``answer``)."""
