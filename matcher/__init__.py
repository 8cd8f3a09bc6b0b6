"""trialmatch: match sarcoma patients to PDQ standard options and ClinicalTrials.gov trials.

Supports coordinator review; not medical advice.
"""

__version__ = "0.1.0"

DISCLAIMER = "Supports coordinator review; not medical advice."
