"""Pure measures: functions of a network and tensors (radii, Jacobian norms and transitions, CKA) and the
statistics the tables use. No files, no configuration: the stages call them."""
