"""Privacy claims and the mechanisms shared by defences and private evaluation."""

from fedsim.privacy.claims import NO_DEFENSE, PrivacyClaim, combine_claims

__all__ = ["NO_DEFENSE", "PrivacyClaim", "combine_claims"]
