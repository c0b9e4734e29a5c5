"""Identity-term directions of the network's feature space, kept out of the heads fitted on it after training.

Sets whose offensive rows often name a group (ToxiChat, the CAT Wikipedia posts, Davidson's tweets) teach a
head that naming a group is hostile: a linear probe fitted on them as they are grew hostility's neutral spread in
the bias audit (`monitor.scoring.bias`) up to sixfold (ethnicity 0.028 -> 0.179). So the heads fitted after
training (hostility's readout, the insult and identity_attack probes) read the features in the complement of
the directions along which mere identity terms move them (a subspace removed as in Bolukbasi et al. 2016's
hard debiasing, found by principal components rather than by classifiers as in
Ravfogel et al. 2020's nullspace projection): the terms below, each in a few short phrases, centred per
phrase, and the leading singular directions of what is left.

The terms span the audit's groups and more (Dixon et al. 2018 list age and disability as well); the phrases
are not the audit's sentences, so the audit still measures something the projection did not see.

The projection removes how terms differ from one another in bare phrases; in a sentence they still differ.
So hostility's readout and identity_attack's probe also train on sentences that merely mention a group, every
term in each of MENTIONS, as negatives (Dixon et al. 2018 balanced their training data the same way); again not the
audit's sentences.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TERMS = (
    "muslim christian jewish hindu buddhist atheist catholic protestant sikh mormon "
    "black white asian latino latina hispanic arab indigenous african european "
    "female male woman man women men transgender trans nonbinary queer "
    "gay lesbian straight bisexual homosexual heterosexual lgbt "
    "mexican american chinese nigerian german indian japanese canadian russian french british "
    "old young elderly teenage deaf blind"
).split()
PHRASES = ("{g}", "{g} people", "the {g} community", "about {g} culture")
# the fewest tried: 20, 40 or 80 moved the mean validation figure by under 0.005 and traded one category's neutral
# spread for another's (40: gender, ethnicity and nationality lower, religion and sexuality higher)
DIRECTIONS = 10
MENTIONS = (
    "I know a {g} person.",
    "This is about {g} people.",
    "My {g} cousin visited us.",
    "The article mentions {g} history.",
    "Some of my friends are {g}.",
)


def mentions() -> list[str]:
    """Every term in every neutral sentence of MENTIONS."""
    return [sentence.format(g=term) for sentence in MENTIONS for term in TERMS]


def complement(features: Callable[[list[str]], np.ndarray], directions: int = DIRECTIONS) -> np.ndarray:
    """The projector (features x features) that removes the leading identity-term directions."""
    texts = [phrase.format(g=term) for phrase in PHRASES for term in TERMS]
    f = features(texts).reshape(len(PHRASES), len(TERMS), -1)
    centred = (f - f.mean(axis=1, keepdims=True)).reshape(-1, f.shape[-1])
    v = np.linalg.svd(centred, full_matrices=False)[2][:directions]
    return np.eye(f.shape[-1]) - v.T @ v
