"""Fixed word lists the generator draws from, and the small functions that turn them into names.

Everything here is invented or public general knowledge (common first names, US metro area names in the
Census "City-City, ST" style that eventsim uses, browser user-agent strings of 2014-era browsers, city
coordinates).  Nothing is copied from the reference sample: the generator only has to *look like* it, so
that a loader tested on generated data behaves the same on the real files.

The lists are tuples so that the order, and hence every seeded draw, is fixed.
"""

from __future__ import annotations

import random

FEMALE_FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Chloe", "Emily", "Hannah", "Isabella", "Jasmine", "Kaylee", "Lily", "Madison", "Mia",
    "Olivia", "Sophia", "Abigail", "Alexis", "Brooklyn", "Claire", "Delaney", "Elena", "Faith",
    "Grace", "Harper", "Ivy", "Jordyn", "Kate", "Layla", "Molly", "Naomi", "Paige", "Quinn", "Rylie",
    "Sara", "Tegan", "Valerie", "Wren", "Zoe", "Aleena", "Anabelle", "Cecilia", "Jacqueline", "Sienna",
)  # fmt: skip

MALE_FIRST_NAMES: tuple[str, ...] = (
    "Aiden", "Benjamin", "Caleb", "Dominick", "Ethan", "Frank", "Gabriel", "Henry", "Isaac", "Jacob",
    "Kevin", "Lucas", "Mason", "Noah", "Owen", "Parker", "Ryan", "Samuel", "Theodore", "Walter",
    "Wyatt", "Xavier", "Aaron", "Brayden", "Carter", "Connor", "Cooper", "Elijah", "Jayden", "Lucero",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Adams", "Baker", "Bell", "Brooks", "Campbell", "Carter", "Clark", "Cole", "Cruz", "Davis",
    "Diaz", "Edwards", "Evans", "Fisher", "Flores", "Ford", "Garcia", "Gonzalez", "Gray", "Green",
    "Hall", "Harris", "Hayes", "Hill", "Hughes", "Jackson", "James", "Jenkins", "Johnson", "Jones",
    "Kelly", "King", "Lee", "Lewis", "Long", "Lopez", "Martin", "Miller", "Mitchell", "Moore",
    "Morgan", "Murphy", "Nelson", "Owens", "Parker", "Perez", "Phillips", "Powell", "Price",
    "Reed", "Reyes", "Rivera", "Roberts", "Robinson", "Ross", "Russell", "Sanders", "Scott",
    "Stewart", "Sullivan", "Taylor", "Thomas", "Torres", "Turner", "Walker", "Ward", "Watson",
    "White", "Williams", "Wilson", "Wood", "Wright", "Young",
)  # fmt: skip

# US Core Based Statistical Area names, the form eventsim writes into `location`.
METROS: tuple[str, ...] = (
    "Atlanta-Sandy Springs-Roswell, GA",
    "Austin-Round Rock, TX",
    "Baltimore-Columbia-Towson, MD",
    "Birmingham-Hoover, AL",
    "Boston-Cambridge-Newton, MA-NH",
    "Charlotte-Concord-Gastonia, NC-SC",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "Cincinnati, OH-KY-IN",
    "Cleveland-Elyria, OH",
    "Columbus, OH",
    "Dallas-Fort Worth-Arlington, TX",
    "Denver-Aurora-Lakewood, CO",
    "Des Moines-West Des Moines, IA",
    "Detroit-Warren-Dearborn, MI",
    "Fresno, CA",
    "Grand Rapids-Wyoming, MI",
    "Hartford-West Hartford-East Hartford, CT",
    "Houston-The Woodlands-Sugar Land, TX",
    "Indianapolis-Carmel-Anderson, IN",
    "Jacksonville, FL",
    "Kansas City, MO-KS",
    "Knoxville, TN",
    "Las Vegas-Henderson-Paradise, NV",
    "Los Angeles-Long Beach-Anaheim, CA",
    "Louisville/Jefferson County, KY-IN",
    "Madison, WI",
    "Memphis, TN-MS-AR",
    "Miami-Fort Lauderdale-West Palm Beach, FL",
    "Milwaukee-Waukesha-West Allis, WI",
    "Minneapolis-St. Paul-Bloomington, MN-WI",
    "Nashville-Davidson--Murfreesboro--Franklin, TN",
    "New Orleans-Metairie, LA",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Oklahoma City, OK",
    "Omaha-Council Bluffs, NE-IA",
    "Orlando-Kissimmee-Sanford, FL",
    "Philadelphia-Camden-Wilmington, PA-NJ-DE-MD",
    "Phoenix-Mesa-Scottsdale, AZ",
    "Pittsburgh, PA",
    "Portland-Vancouver-Hillsboro, OR-WA",
    "Providence-Warwick, RI-MA",
    "Raleigh, NC",
    "Richmond, VA",
    "Sacramento--Roseville--Arden-Arcade, CA",
    "Salt Lake City, UT",
    "San Antonio-New Braunfels, TX",
    "San Diego-Carlsbad, CA",
    "San Francisco-Oakland-Hayward, CA",
    "San Jose-Sunnyvale-Santa Clara, CA",
    "Seattle-Tacoma-Bellevue, WA",
    "Spokane-Spokane Valley, WA",
    "St. Louis, MO-IL",
    "Tampa-St. Petersburg-Clearwater, FL",
    "Tucson, AZ",
    "Tulsa, OK",
    "Washington-Arlington-Alexandria, DC-VA-MD-WV",
    "Wichita, KS",
    "Winston-Salem, NC",
)

# (user agent, wrapped in literal double quotes?, relative weight).  eventsim wrote most agents with
# surrounding quote characters inside the JSON string; Firefox and IE agents appear unquoted.
USER_AGENTS: tuple[tuple[str, bool, float], ...] = (
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/36.0.1985.143 Safari/537.36",
        True,
        10.0,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.78.2 (KHTML, like Gecko) "
        "Version/7.0.6 Safari/537.78.2",
        True,
        7.0,
    ),
    ("Mozilla/5.0 (Windows NT 5.1; rv:31.0) Gecko/20100101 Firefox/31.0", False, 7.0),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
        True,
        5.0,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/37.0.2062.94 Safari/537.36",
        True,
        5.0,
    ),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0", False, 4.0),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.125 Safari/537.36",
        True,
        4.0,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
        True,
        4.0,
    ),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0", False, 3.0),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) "
        "Version/7.0 Mobile/11D257 Safari/9537.53",
        True,
        2.5,
    ),
    (
        "Mozilla/5.0 (Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
        True,
        2.5,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/36.0.1985.143 Safari/537.36",
        True,
        2.0,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/37.0.2062.103 Safari/537.36",
        True,
        1.0,
    ),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", False, 1.0),
    ("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0)", False, 0.5),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_6_8) AppleWebKit/534.59.10 (KHTML, like Gecko) "
        "Version/5.1.9 Safari/534.59.10",
        True,
        0.5,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0", False, 0.5),
)

# Artist home towns: (artist_location, latitude, longitude).  Coordinates are the towns' own.
ARTIST_PLACES: tuple[tuple[str, float, float], ...] = (
    ("Nashville, TN", 36.16778, -86.77836),
    ("Memphis, TN", 35.14968, -90.04892),
    ("Chicago, IL", 41.88415, -87.63241),
    ("New York, NY", 40.71455, -74.00712),
    ("Brooklyn, NY", 40.65507, -73.94888),
    ("Los Angeles, CA", 34.05349, -118.24532),
    ("California - SF", 37.77916, -122.42005),
    ("Seattle, WA", 47.60356, -122.32944),
    ("Austin, TX", 30.26759, -97.74299),
    ("Atlanta, GA", 33.74831, -84.39111),
    ("Detroit, MI", 42.33168, -83.04792),
    ("New Orleans, LA", 29.95369, -90.07771),
    ("Minneapolis, MN", 44.97903, -93.26493),
    ("Athens, GA", 33.95949, -83.37693),
    ("Toronto, Ontario, Canada", 43.64856, -79.38533),
    ("Montreal, Quebec, Canada", 45.51228, -73.55439),
    ("London, England", 51.50632, -0.12714),
    ("Manchester, England", 53.4796, -2.24881),
    ("Glasgow, Scotland", 55.85711, -4.24251),
    ("Dublin, Ireland", 53.34376, -6.24953),
    ("Paris, France", 48.85692, 2.34121),
    ("Berlin, Germany", 52.51607, 13.37698),
    ("Stockholm, Sweden", 59.33217, 18.06243),
    ("Reykjavík, Iceland", 64.13548, -21.89541),
    ("São Paulo, Brazil", -23.56287, -46.65458),
    ("Havana, Cuba", 23.13195, -82.36418),
    ("Kingston, Jamaica", 17.99702, -76.79358),
    ("Lagos, Nigeria", 6.44326, 3.39139),
    ("Tokyo, Japan", 35.68953, 139.69171),
    ("Melbourne, Australia", -37.81753, 144.96715),
    ("México, D.F.", 19.43195, -99.13315),
    ("Zürich, Switzerland", 47.3686, 8.53918),
)

# Place names artists give without coordinates (the Million Song Dataset has many such).
ARTIST_PLACES_NO_COORDS: tuple[str, ...] = (
    "California - LA",
    "Ohio",
    "Texas",
    "Jersey",
    "UK",
    "Sweden",
    "Houston, TX",
    "Bronx, NY",
    "Gainesville, FL",
    "Hamilton, Ohio",
    "Bay Area, CA",
    "New York, NY [Manhattan]",
    "Buenos Aires, Argentina",
    "Montréal",
)

ADJECTIVES: tuple[str, ...] = (
    "Blue", "Broken", "Burning", "Cold", "Crazy", "Dark", "Electric", "Empty", "Endless", "Fading",
    "Golden", "Green", "Hollow", "Invisible", "Last", "Little", "Lonely", "Lost", "Midnight", "Naked",
    "Neon", "Paper", "Perfect", "Quiet", "Red", "Restless", "Secret", "Silver", "Simple", "Slow",
    "Strange", "Sweet", "Velvet", "Wild", "Wooden", "Young", "Wicked", "Summer", "Northern", "Hidden",
)  # fmt: skip

NOUNS: tuple[str, ...] = (
    "Angel", "Avenue", "Bird", "Bridge", "Candle", "City", "Cloud", "Dance", "Desert", "Dream",
    "Engine", "Fire", "Flower", "Garden", "Ghost", "Girl", "Heart", "Highway", "Horizon", "House",
    "Island", "Kingdom", "Letter", "Light", "Machine", "Mirror", "Moon", "Morning", "Mountain",
    "Night", "Ocean", "Parade", "Radio", "Rain", "River", "Road", "Rose", "Shadow", "Sky", "Song",
    "Star", "Storm", "Street", "Sun", "Train", "Valley", "Water", "Wheel", "Window", "Wolf",
)  # fmt: skip

VERBS: tuple[str, ...] = (
    "Call", "Carry", "Chase", "Dance", "Drive", "Fall", "Find", "Follow", "Hold", "Keep", "Kiss",
    "Leave", "Love", "Miss", "Need", "Run", "Save", "Shake", "Take", "Touch", "Wait", "Walk", "Want",
)  # fmt: skip

# Non-ASCII words, so that escaping and encoding are exercised end to end.
ACCENTED_WORDS: tuple[str, ...] = (
    "Café", "Mañana", "Corazón", "Niño", "Señorita", "Déjà Vu", "Été", "Fräulein", "Über", "Noël",
    "Crème", "Ça Va", "Fiancée", "Müde", "Smörgåsbord", "Łódź", "Jalapeño", "Garçon", "Résumé",
    "Kärlek", "Piñata", "Øresund", "Canción", "Sueño", "Pequeña", "Schön", "Tränen", "Ψυχή",
)  # fmt: skip

ACCENTED_FIRST_NAMES: tuple[str, ...] = (
    "José", "Björn", "Zoë", "Renée", "François", "Søren", "Héloïse", "Jürgen", "Iñaki", "Chloé",
)  # fmt: skip

ACCENTED_LAST_NAMES: tuple[str, ...] = (
    "Müller", "Núñez", "Sjöström", "Dvořák", "Saint-Saëns", "Gómez", "Åberg", "Lefèvre", "Ibáñez",
)  # fmt: skip

TITLE_SUFFIXES: tuple[str, ...] = (
    " (Album Version)",
    " (Live)",
    " (Radio Edit)",
    " (Remix)",
    " (LP Version)",
    " (Instrumental Version)",
    " (Explicit Album Version)",
    " (2006 Digital Remaster)",
    " (Acoustic)",
    " [Live At The Fillmore]",
    ' (7" Version)',
)

BAND_NOUNS: tuple[str, ...] = (
    "Kings", "Brothers", "Sisters", "Pilots", "Strangers", "Saints", "Wolves", "Lovers", "Machines",
    "Rebels", "Ghosts", "Orchestra", "Collective", "Experience", "Project", "Trio", "Quartet",
)  # fmt: skip


def _word(rng: random.Random, accent_share: float) -> str:
    """A title word: usually a plain noun, sometimes an accented one."""
    if rng.random() < accent_share:
        return rng.choice(ACCENTED_WORDS)
    return rng.choice(NOUNS)


def make_title(rng: random.Random) -> str:
    """A plausible song title; a few contain non-ASCII, quotes, slashes or apostrophes."""
    r = rng.random()
    if r < 0.30:
        title = f"{rng.choice(ADJECTIVES)} {_word(rng, 0.06)}"
    elif r < 0.45:
        title = _word(rng, 0.08)
    elif r < 0.58:
        title = f"{rng.choice(VERBS)} {rng.choice(('Me', 'You', 'It', 'Us', 'Her', 'Him'))}"
    elif r < 0.68:
        title = f"{_word(rng, 0.05)} Of The {rng.choice(NOUNS)}"
    elif r < 0.76:
        title = f"Don't {rng.choice(VERBS)} My {_word(rng, 0.05)}"
    elif r < 0.83:
        kind = rng.choice(("Blues", "Song", "Waltz", "Rag"))
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {kind}"
    elif r < 0.88:
        title = f"{rng.choice(NOUNS)}/{rng.choice(NOUNS)}"
    elif r < 0.91:
        title = f'Theme From "{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"'
    elif r < 0.98:
        title = f"{rng.choice(VERBS)} {rng.choice(('On', 'Away', 'Down', 'Back'))} {_word(rng, 0.04)}"
    else:
        title = f"{rng.choice(ACCENTED_WORDS)} {rng.choice(ACCENTED_WORDS)}"
    if rng.random() < 0.14:
        title += rng.choice(TITLE_SUFFIXES)
    return title


def _person(rng: random.Random) -> str:
    if rng.random() < 0.03:
        return f"{rng.choice(ACCENTED_FIRST_NAMES)} {rng.choice(ACCENTED_LAST_NAMES)}"
    first = rng.choice(FEMALE_FIRST_NAMES if rng.random() < 0.5 else MALE_FIRST_NAMES)
    return f"{first} {rng.choice(LAST_NAMES)}"


def make_artist_name(rng: random.Random) -> str:
    """A plausible artist name: bands, people, collaborations and classical-style credit lists."""
    r = rng.random()
    if r < 0.28:
        return f"The {rng.choice(ADJECTIVES)} {rng.choice(BAND_NOUNS)}"
    if r < 0.55:
        return _person(rng)
    if r < 0.66:
        return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    if r < 0.74:
        return f"{_person(rng)} & The {rng.choice(BAND_NOUNS)}"
    if r < 0.81:
        return f"{_person(rng)} featuring {_person(rng)}"
    if r < 0.86:
        return ";".join(_person(rng) for _ in range(rng.randint(2, 4)))
    if r < 0.90:
        return f"{rng.choice(NOUNS)} / {rng.choice(NOUNS)}"
    if r < 0.985:
        return f"{rng.choice(NOUNS)}{rng.choice(('', 's', 'ville', ' Club', ' Sound'))}"
    if r < 0.993:
        return f"{rng.choice(ACCENTED_WORDS)} {rng.choice(BAND_NOUNS)}"
    return rng.choice(ACCENTED_LAST_NAMES)
