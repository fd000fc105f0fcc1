"""DetectModerationLabels: unsafe-content labels in Rekognition's hierarchical taxonomy.

Rekognition (moderation model 7) files labels under ten top-level (TaxonomyLevel 1) categories:
Explicit; Non-Explicit Nudity of Intimate parts and Kissing; Swimwear or Underwear; Violence;
Visually Disturbing; Drugs & Tobacco; Alcohol; Rude Gestures; Gambling; Hate Symbols, each with
level-2 and some level-3 labels below it ("Explicit" > "Explicit Nudity" > "Exposed Female
Nipple"). Opsis emits only the labels its model has evidence for, never a sub-label the model
cannot tell apart, and every emitted label's parents with it.

The default model, open_nsfw (`opsis.vision.runners.open_nsfw`), gives one score per image,
P(nsfw), trained on pornographic against other photos: it is evidence for the level-1 label
"Explicit" only (it cannot say whether nudity, a sexual act or a toy made the image explicit), and
that label's Confidence is the network's own P(nsfw) x 100, uncalibrated (there is no explicit
test data to calibrate on). It also scores strongly suggestive photos (lingerie, swimwear, implied
nudity) high, which Rekognition files under other categories: see benchmarks/detect_moderation_labels.py.
No other category (violence, drugs, alcohol, gestures, gambling, hate symbols, swimwear) is
detected, so the absence of those labels means nothing.

The optional NudeNet detector (OPSIS_CONTENT_MODERATOR=nudenet-320n; AGPL-3.0, never installed by
default) finds exposed body parts instead, and so gives level-3 labels ("Exposed Female Genitalia",
"Exposed Buttocks or Anus", "Exposed Female Nipple", "Exposed Male Genitalia" under "Explicit
Nudity" > "Explicit"; "Exposed Male Nipple" under "Non-Explicit Nudity" > "Non-Explicit Nudity of
Intimate parts and Kissing") with its raw, uncalibrated box confidences.

Refused rather than ignored, because a caller relying on them would be misled: `HumanLoopConfig`
(no Amazon Augmented AI human review here) and `ProjectVersion` (no custom moderation adapters).
`ContentTypes` (animated / illustrated) is not returned: no model here tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsis.errors import InvalidParameterException
from opsis.ops.context import Context
from opsis.ops.images import load_image
from opsis.vision.types import DecodedImage

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import DetectModerationLabelsResponseTypeDef, ModerationLabelTypeDef

# Rekognition: "If you don't specify the MinConfidence parameter ... the operation returns labels
# with a confidence value greater than or equal to 50 percent."
DEFAULT_MIN_CONFIDENCE = 50.0


@dataclass(frozen=True)
class TaxonomyLabel:
    """A label of Rekognition's moderation taxonomy; `parent` is "" at level 1, as on the wire."""

    name: str
    parent: str
    level: int


# The labels of Rekognition's taxonomy that some Opsis moderation model can emit.
TAXONOMY: dict[str, TaxonomyLabel] = {
    label.name: label
    for label in (
        TaxonomyLabel("Explicit", "", 1),
        TaxonomyLabel("Explicit Nudity", "Explicit", 2),
        TaxonomyLabel("Exposed Male Genitalia", "Explicit Nudity", 3),
        TaxonomyLabel("Exposed Female Genitalia", "Explicit Nudity", 3),
        TaxonomyLabel("Exposed Buttocks or Anus", "Explicit Nudity", 3),
        TaxonomyLabel("Exposed Female Nipple", "Explicit Nudity", 3),
        TaxonomyLabel("Non-Explicit Nudity of Intimate parts and Kissing", "", 1),
        TaxonomyLabel("Non-Explicit Nudity", "Non-Explicit Nudity of Intimate parts and Kissing", 2),
        TaxonomyLabel("Exposed Male Nipple", "Non-Explicit Nudity", 3),
    )
}

# For each moderation model (opsis.vision.registry.CONTENT_MODERATORS): the most specific taxonomy
# label each of its classes is evidence for. Classes not listed (NudeNet's faces, feet, bellies,
# armpits and covered parts) are evidence for no label.
MODEL_LABELS: dict[str, dict[str, str]] = {
    "open-nsfw": {"nsfw": "Explicit"},
    # Optional, AGPL-3.0 (opsis.vision.runners.nudenet). Its "breast exposed" box stands for
    # Rekognition's "Exposed Female Nipple": it marks a bare breast, nipple included.
    "nudenet-320n": {
        "MALE_GENITALIA_EXPOSED": "Exposed Male Genitalia",
        "FEMALE_GENITALIA_EXPOSED": "Exposed Female Genitalia",
        "BUTTOCKS_EXPOSED": "Exposed Buttocks or Anus",
        "ANUS_EXPOSED": "Exposed Buttocks or Anus",
        "FEMALE_BREAST_EXPOSED": "Exposed Female Nipple",
        "MALE_BREAST_EXPOSED": "Exposed Male Nipple",
    },
}


def detect_moderation_labels(ctx: Context, params: dict[str, Any]) -> DetectModerationLabelsResponseTypeDef:
    """DetectModerationLabels: the labels at or above `MinConfidence` (default 50), most confident
    first, parents before their children on ties."""
    refuse_unsupported(params)
    return moderation_in_image(ctx, load_image(ctx, params["Image"]), params)


def moderation_in_image(
    ctx: Context, image: DecodedImage, params: Mapping[str, Any]
) -> DetectModerationLabelsResponseTypeDef:
    """DetectModerationLabels' response for a decoded image (a photo or a video frame)."""
    moderator = ctx.content_moderator()
    confidences = label_confidences(moderator.name, moderator.moderate(image.pixels))
    threshold = params.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
    chosen = [(TAXONOMY[name], confidence) for name, confidence in confidences.items() if confidence >= threshold]
    chosen.sort(key=lambda item: (-item[1], item[0].level))
    return {
        "ModerationLabels": [moderation_label(label, confidence) for label, confidence in chosen],
        "ModerationModelVersion": moderator.version,
    }  # type: ignore[typeddict-item]


def refuse_unsupported(params: Mapping[str, Any]) -> None:
    if "HumanLoopConfig" in params:
        raise InvalidParameterException(
            "HumanLoopConfig is not supported: Opsis starts no Amazon Augmented AI human review. "
            "Leave it out and route low-confidence results to your own review."
        )
    if "ProjectVersion" in params:
        raise InvalidParameterException(
            "ProjectVersion is not supported: Opsis has no custom moderation adapters. "
            "Leave it out to use the base moderation model."
        )


def label_confidences(model: str, scores: Mapping[str, float]) -> dict[str, float]:
    """Confidence 0-100 of every taxonomy label the model's class `scores` give evidence for; a
    label's parents get the highest confidence of the labels below them."""
    confidences: dict[str, float] = {}
    evidence = MODEL_LABELS[model]
    for model_class, score in scores.items():
        label: TaxonomyLabel | None = TAXONOMY[evidence[model_class]] if model_class in evidence else None
        while label is not None:
            confidences[label.name] = max(confidences.get(label.name, 0.0), float(score) * 100.0)
            label = TAXONOMY[label.parent] if label.parent else None
    return confidences


def moderation_label(label: TaxonomyLabel, confidence: float) -> ModerationLabelTypeDef:
    return {"Name": label.name, "ParentName": label.parent, "TaxonomyLevel": label.level, "Confidence": confidence}
