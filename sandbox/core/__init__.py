"""The shared core: state, time and import behaviour that every vendor face calls into."""
