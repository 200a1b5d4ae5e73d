"""Formal first names and the short forms people give instead, per country."""

_EN = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "William": ("Bill", "Will", "Billy"),
    "Katherine": ("Kate", "Katie", "Kathy"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"),
    "Margaret": ("Maggie", "Peggy"),
    "James": ("Jim", "Jimmy"),
    "Richard": ("Rick", "Dick"),
    "Thomas": ("Tom", "Tommy"),
    "Michael": ("Mike", "Mick"),
    "Christopher": ("Chris",),
    "Jennifer": ("Jen", "Jenny"),
    "Alexander": ("Alex",),
    "Daniel": ("Dan", "Danny"),
    "Joseph": ("Joe",),
    "Jonathan": ("Jon",),
    "Samantha": ("Sam",),
    "Rebecca": ("Becky",),
    "Edward": ("Ed", "Ted"),
    "Anthony": ("Tony",),
    "Matthew": ("Matt",),
    "Nicholas": ("Nick",),
    "Patricia": ("Pat", "Tricia"),
    "Susan": ("Sue",),
    "Victoria": ("Vicky",),
    "Charles": ("Charlie", "Chuck"),
    "Benjamin": ("Ben",),
    "Andrew": ("Andy",),
}

_DE = {
    "Johannes": ("Hans", "Jo"),
    "Johann": ("Hans",),
    "Friedrich": ("Fritz",),
    "Wolfgang": ("Wolf",),
    "Elisabeth": ("Lisa", "Elli"),
    "Katharina": ("Kathi", "Katja"),
    "Margarete": ("Grete",),
    "Alexander": ("Alex",),
    "Christian": ("Chris",),
    "Stefanie": ("Steffi",),
    "Susanne": ("Susi",),
    "Andreas": ("Andi",),
    "Michael": ("Michi",),
    "Thomas": ("Tom",),
    "Matthias": ("Matze",),
    "Franziska": ("Franzi",),
    "Maximilian": ("Max",),
    "Magdalena": ("Lena",),
    "Gabriele": ("Gabi",),
    "Barbara": ("Babsi",),
}

_FR = {
    "Catherine": ("Cathy",),
    "Nicolas": ("Nico",),
    "Christophe": ("Chris",),
    "Frédéric": ("Fred",),
    "Alexandre": ("Alex",),
    "Stéphanie": ("Steph",),
    "Isabelle": ("Isa",),
    "Dominique": ("Dom",),
    "Emmanuel": ("Manu",),
    "Véronique": ("Véro",),
    "Sébastien": ("Seb",),
    "Maximilien": ("Max",),
    "Philippe": ("Phil",),
    "Élisabeth": ("Babette", "Lisette"),
}

_NL = {
    "Johannes": ("Jan", "Hans"),
    "Cornelis": ("Kees",),
    "Wilhelmus": ("Wim",),
    "Hendrik": ("Henk",),
    "Jacobus": ("Koos", "Jaap"),
    "Elisabeth": ("Lies", "Bep"),
    "Catharina": ("Tineke", "Toos"),
    "Adrianus": ("Arie",),
    "Petrus": ("Piet",),
    "Theodorus": ("Theo",),
    "Johanna": ("Anneke", "Jo"),
    "Maria": ("Marieke", "Mies"),
}

_FEMALE = {
    "Katherine", "Elizabeth", "Margaret", "Jennifer", "Samantha", "Rebecca", "Patricia", "Susan",
    "Victoria", "Elisabeth", "Katharina", "Margarete", "Stefanie", "Susanne", "Franziska",
    "Magdalena", "Gabriele", "Barbara", "Catherine", "Stéphanie", "Isabelle", "Véronique",
    "Élisabeth", "Catharina", "Johanna", "Maria",
}

NICKNAMES: dict[str, dict[str, tuple[str, ...]]] = {"GB": _EN, "US": _EN, "DE": _DE, "FR": _FR, "NL": _NL}


def formal_names(country: str, gender: str) -> list[str]:
    """Formal names with a known short form, so the pools always contain some."""
    want_female = gender == "F"
    return [n for n in NICKNAMES[country] if (n in _FEMALE) == want_female]
