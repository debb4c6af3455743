"""The HTTP layer shared by every vendor face: validation, errors, the request gateway."""
