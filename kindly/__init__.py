"""Kindly's application layer: settings, data model, policy and the services the gateway and actions share."""
