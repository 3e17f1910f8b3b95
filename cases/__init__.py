"""The domain: agencies, people, cases and teams, leads and identifiers, evidence and custody."""
