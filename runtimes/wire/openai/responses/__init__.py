"""The Responses API on the wire: requests, input and output items, response objects, events."""
