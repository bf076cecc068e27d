"""One module per resource; each exports its route handlers."""
