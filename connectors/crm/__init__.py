"""CRM sinks: stream crm.case-events into a CRM. `base.py` is the contract; `salesforce.py` the first CRM."""
