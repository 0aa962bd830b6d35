"""Simulators of HubSpot, Salesforce and Zoho Books for tests, the demo and test mode."""
