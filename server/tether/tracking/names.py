"""Random run names in MLflow's style ("adjective-noun-123") for runs created without one."""

from __future__ import annotations

import random

_ADJECTIVES = (  # noqa: SIM905 - a word list reads better as text
    "abundant able adorable agreeable amazing ambitious amusing angry auspicious bald beautiful "
    "bedecked bemused bittersweet blushing bold bouncy brawny bright burly capable carefree "
    "casual caring charming clean clumsy colorful crawling debonair delicate dapper defiant "
    "enchanting entertaining enthused fearless flawless fortunate funny gaudy gentle gifted "
    "glamorous grandiose gregarious handsome hilarious honorable illustrious incongruous "
    "indecisive industrious intelligent inquisitive invincible judicious kindly languid learned "
    "legendary likeable loud luminous lyrical magnificent marvelous masked melodic merciful "
    "mercurial monumental mysterious nebulous nimble nosy omniscient orderly overjoyed peaceful "
    "painted persistent placid polite popular powerful puzzled rambunctious rare rebellious "
    "resilient respected righteous receptive redolent resilient rumbling salty sassy secretive "
    "selective sedate serious shivering skillful sincere smiling sneaky sophisticated spiffy "
    "stately suave stylish tasteful thoughtful thundering traveling treasured trusting unequaled "
    "upbeat unique unleashed useful valuable vaunted victorious welcoming whimsical wise witty "
    "wistful worried youthful zealous"
).split()
_NOUNS = (  # noqa: SIM905
    "ant ape asp auk bass bat bear bee bird boar bug calf carp cat chimp cod colt conch cow "
    "crab crane croc crow cub deer doe dog dolphin donkey dove duck eel elk fawn finch fish "
    "flea fly foal fowl fox frog gnat gnu goat goose grouse grub gull hare hawk hen hog horse "
    "hound jay kit kite koi lamb lark loon lynx mare midge mink mole moose moth mouse mule newt "
    "owl ox panda penguin perch pig pug quail ram rat ray robin roo rook seal shad shark sheep "
    "shoat shrew shrike shrimp skink skunk sloth slug smelt snail snake snipe sow sponge squid "
    "squirrel stag steed stoat stork swan tern toad trout turtle vole wasp whale wolf worm wren "
    "yak zebra"
).split()


def random_run_name() -> str:
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(0, 999)}"
