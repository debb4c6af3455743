"""The live dashboard of demo environments: one HTML page and its static assets (no build step,
nothing loaded from elsewhere), rendered in the browser from the control API."""
