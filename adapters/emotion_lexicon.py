"""Word lists for the TextBlob sentiment adapter: emotion cues and stopwords.

Kept hand-written and small on purpose: NLTK corpora and WordNet are not
available offline, and a few dozen common words per emotion are enough for a
coarse label of everyday speech.  Entries are mostly base
forms; the adapter strips common suffixes (-s, -ed, -ing, -ly, -ness, ...)
from tokens before looking them up here.
"""

from __future__ import annotations

from collections.abc import Mapping


def _words(text: str) -> frozenset[str]:
    # Whitespace-separated words read better than a one-per-line list literal.
    return frozenset(text.split())


EMOTION_WORDS: Mapping[str, frozenset[str]] = {
    "joy": _words(
        """
        happy glad joy joyful joyous delight delighted delightful cheerful cheer
        excite excited exciting thrill thrilled love lovely wonderful great
        fantastic awesome amazing celebrate smile laugh fun enjoy pleased
        pleasure grateful thankful proud ecstatic elated content bliss blissful
        hope hopeful yay hooray brilliant excellent beautiful
        """
    ),
    "sadness": _words(
        """
        sad unhappy sorrow sorrowful grief grieve cry tears tearful weep sob
        miserable depressed depression gloomy gloom heartbroken lonely alone
        lonesome loss mourn upset hurt pain painful disappoint
        disappointed regret despair hopeless melancholy sorry tragic
        tragedy unfortunate
        """
    ),
    "anger": _words(
        """
        angry anger mad furious fury rage enrage enraged outrage outraged hate
        hatred annoy annoyed annoying irritate irritated frustrate frustrated
        livid resent resentful hostile bitter disgust disgusted disgusting
        infuriate infuriating offend offended yell shout scream argue fight
        irate pissed
        """
    ),
    "fear": _words(
        """
        afraid fear fearful scare scared scary frighten frightened frightening
        terrify terrified terror horror horrify horrified panic anxious anxiety
        worry worried nervous dread dreadful alarm alarmed threat threaten
        danger dangerous tense uneasy creepy spooky petrify petrified shaky
        tremble
        """
    ),
    "surprise": _words(
        """
        surprise surprised surprising astonish astonished astonishing amaze
        amazed astound astounded shock shocked shocking stun stunned startle
        startled unexpected unbelievable incredible wow whoa sudden suddenly
        speechless bewilder bewildered
        """
    ),
}

# Words that flip the emotion of the next few tokens ("not happy" is not joy).
NEGATIONS = _words(
    """
    not no never nor none nobody nothing neither without hardly barely cannot
    """
)

# A small English stopword set (no NLTK corpus offline).  The tagger sometimes
# labels these, or contraction fragments like the "m" of "I'm", as nouns.
STOPWORDS = _words(
    """
    a about above after again against all am an and any are as at be because
    been before being below between both but by can could did do does doing
    down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would
    you your yours yourself yourselves
    s t m d ll re ve n don isn aren wasn weren hasn haven hadn doesn didn won
    wouldn shan shouldn couldn mustn
    also really thing things lot lots way much many yes ok okay etc
    today tomorrow yesterday
    """
)
