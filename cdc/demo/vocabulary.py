"""Built-in word lists and the realistic values made from them: companies, people, addresses, phones, goods.

Everything takes a `random.Random`, so a generator seeded the same way makes the same values. Values fit the
narrower of the two demo schemas' columns, so they survive a sync in either direction.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    currency: str
    tld: str
    phone: str  # '#' stands for a digit
    mobile: str
    legal_forms: tuple[str, ...]
    mailboxes: tuple[str, ...]
    streets: tuple[str, ...]
    number_first: bool  # "12 High Street" rather than "Vestergade 12"
    cities: tuple[tuple[str, str, str], ...]  # city, post code, county
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    second_lines: tuple[str, ...]


NORDIC_FIRST = ("Anders", "Anne", "Birgitte", "Christian", "Freja", "Frederik", "Ida", "Jens", "Karen",
                "Kasper", "Lars", "Line", "Mads", "Mette", "Niels", "Peter", "Rasmus", "Signe", "Søren",
                "Sofie", "Thomas", "Ulla", "Astrid", "Bjørn", "Ingrid", "Erik", "Kristin", "Linnea", "Magnus",
                "Åsa", "Nils", "Sigrid")
NORDIC_LAST = ("Andersen", "Christensen", "Hansen", "Jensen", "Johansen", "Larsen", "Madsen", "Mortensen",
               "Møller", "Nielsen", "Olsen", "Pedersen", "Petersen", "Poulsen", "Rasmussen", "Sørensen",
               "Thomsen", "Kristensen", "Berg", "Dahl", "Lindqvist", "Holm", "Eriksson", "Johansson",
               "Karlsson", "Nilsson", "Lund", "Bakke", "Haugen", "Strand", "Østergaard", "Kjær")
GERMAN_FIRST = ("Alexander", "Andrea", "Claudia", "Daniel", "Felix", "Julia", "Jürgen", "Katrin", "Klaus",
                "Lukas", "Maximilian", "Monika", "Sabine", "Stefan", "Ursula", "Wolfgang", "Jörg", "Heike",
                "Tobias", "Lena", "Matthias", "Sandra", "Uwe", "Anja")
GERMAN_LAST = ("Bauer", "Becker", "Fischer", "Hoffmann", "Koch", "Krüger", "Meyer", "Müller", "Richter",
               "Schäfer", "Schmidt", "Schneider", "Schulz", "Wagner", "Weber", "Wolf", "Zimmermann",
               "Neumann", "Schwarz", "Braun", "Hofmann", "Hartmann", "Lange", "Krause")
ENGLISH_FIRST = ("Amelia", "Charlotte", "Daniel", "David", "Emily", "George", "Grace", "Harry", "Jack",
                 "James", "Jessica", "John", "Laura", "Michael", "Olivia", "Oliver", "Robert", "Sarah",
                 "Sophie", "Thomas", "William", "Emma", "Jennifer", "Christopher", "Ashley", "Matthew",
                 "Megan", "Ryan")
ENGLISH_LAST = ("Brown", "Clarke", "Davies", "Evans", "Green", "Hall", "Harris", "Hughes", "Jackson",
                "Johnson", "Jones", "Lewis", "Miller", "Moore", "Roberts", "Robinson", "Smith", "Taylor",
                "Thompson", "Walker", "White", "Williams", "Wilson", "Wright", "Anderson", "Martinez",
                "Garcia", "O'Brien")
DUTCH_FIRST = ("Bram", "Daan", "Emma", "Femke", "Jan", "Joost", "Lotte", "Maarten", "Noor", "Pieter", "Sanne",
               "Sem", "Tess", "Willem", "Anouk", "Ruben")
DUTCH_LAST = ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit",
              "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks")
FRENCH_FIRST = ("Camille", "Chloé", "Élodie", "François", "Hugo", "Julien", "Léa", "Louis", "Manon",
                "Nicolas", "Pierre", "Sophie", "Thierry", "Isabelle", "Mathieu", "Aurélie")
FRENCH_LAST = ("Martin", "Bernard", "Dubois", "Durand", "Lefèvre", "Leroy", "Moreau", "Laurent", "Simon",
               "Michel", "Garnier", "Faure", "Rousseau", "Blanc", "Girard", "Lambert")
POLISH_FIRST = ("Agnieszka", "Anna", "Katarzyna", "Krzysztof", "Łukasz", "Marek", "Michał", "Piotr", "Tomasz",
                "Magdalena", "Paweł", "Joanna")
POLISH_LAST = ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński",
               "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Mazur")

COUNTRIES: tuple[Country, ...] = (
    Country("DK", "DKK", "dk", "+45 ## ## ## ##", "+45 2# ## ## ##", ("A/S", "ApS", "I/S"),
            ("info", "post", "kontakt", "salg"),
            ("Vestergade", "Nørregade", "Østergade", "Strandvejen", "Industrivej", "Hovedgaden", "Skovvej",
             "Bredgade", "Søndergade", "Havnegade", "Kongevejen", "Jernbanegade"), False,
            (("København K", "1050", "Hovedstaden"), ("Aarhus C", "8000", "Midtjylland"),
             ("Odense C", "5000", "Syddanmark"), ("Aalborg", "9000", "Nordjylland"),
             ("Esbjerg", "6700", "Syddanmark"), ("Kolding", "6000", "Syddanmark"),
             ("Vejle", "7100", "Syddanmark"),
             ("Roskilde", "4000", "Sjælland"), ("Horsens", "8700", "Midtjylland"),
             ("Randers C", "8900", "Midtjylland"), ("Herning", "7400", "Midtjylland"),
             ("Hillerød", "3400", "Hovedstaden")),
            NORDIC_FIRST, NORDIC_LAST, ("1. sal", "2. sal tv.", "Bygning B", "Port 3")),
    Country("DE", "EUR", "de", "+49 ### #######", "+49 15# ########", ("GmbH", "AG", "GmbH & Co. KG", "KG"),
            ("info", "kontakt", "vertrieb", "office"),
            ("Hauptstraße", "Bahnhofstraße", "Industriestraße", "Gartenweg", "Lindenallee", "Schulstraße",
             "Bergstraße", "Am Markt", "Ringstraße", "Goethestraße", "Mühlenweg"), False,
            (("Berlin", "10115", "Berlin"), ("Hamburg", "20095", "Hamburg"), ("München", "80331", "Bayern"),
             ("Köln", "50667", "Nordrhein-Westfalen"), ("Frankfurt am Main", "60311", "Hessen"),
             ("Stuttgart", "70173", "Baden-Württemberg"), ("Düsseldorf", "40213", "Nordrhein-Westfalen"),
             ("Leipzig", "04109", "Sachsen"), ("Bremen", "28195", "Bremen"),
             ("Hannover", "30159", "Niedersachsen"),
             ("Nürnberg", "90402", "Bayern"), ("Dresden", "01067", "Sachsen")),
            GERMAN_FIRST, GERMAN_LAST, ("Hinterhaus", "2. OG", "Halle 4", "Gebäude C")),
    Country("GB", "GBP", "co.uk", "+44 20 #### ####", "+44 7700 900###", ("Ltd", "PLC", "LLP"),
            ("info", "sales", "hello", "enquiries"),
            ("High Street", "Station Road", "Church Lane", "Mill Road", "Victoria Street", "Park Avenue",
             "King Street", "Queens Road", "London Road", "Market Place"), True,
            (("London", "EC1A 1BB", "Greater London"), ("Manchester", "M1 1AE", "Greater Manchester"),
             ("Birmingham", "B1 1AA", "West Midlands"), ("Leeds", "LS1 1UR", "West Yorkshire"),
             ("Bristol", "BS1 4DJ", "Bristol"), ("Edinburgh", "EH1 1YZ", "City of Edinburgh"),
             ("Glasgow", "G1 1XQ", "Glasgow City"), ("Cardiff", "CF10 1EP", "Cardiff"),
             ("Liverpool", "L1 8JQ", "Merseyside"), ("Nottingham", "NG1 5FW", "Nottinghamshire")),
            ENGLISH_FIRST, ENGLISH_LAST, ("Unit 4", "Suite 210", "Floor 3", "The Old Mill")),
    Country("US", "USD", "com", "+1 ### 555 ####", "+1 ### 555 ####", ("Inc.", "LLC", "Corp."),
            ("info", "sales", "contact", "hello"),
            ("Main Street", "Oak Avenue", "Maple Drive", "Washington Boulevard", "Industrial Parkway",
             "Commerce Drive", "Elm Street", "Lakeview Road", "5th Avenue", "Broadway"), True,
            (("New York", "10001", "NY"), ("Chicago", "60601", "IL"), ("Boston", "02108", "MA"),
             ("Seattle", "98101", "WA"), ("Austin", "78701", "TX"), ("Denver", "80202", "CO"),
             ("Atlanta", "30303", "GA"), ("San Francisco", "94103", "CA"), ("Portland", "97204", "OR"),
             ("Minneapolis", "55401", "MN")),
            ENGLISH_FIRST, ENGLISH_LAST, ("Suite 100", "Suite 450", "Building 2", "Floor 12")),
    Country("NL", "EUR", "nl", "+31 20 ### ####", "+31 6 ########", ("B.V.", "N.V."),
            ("info", "verkoop", "contact"),
            ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg", "Industrieweg", "Prinsengracht",
             "Marktplein", "Julianastraat"), False,
            (("Amsterdam", "1012 AB", "Noord-Holland"), ("Rotterdam", "3011 AD", "Zuid-Holland"),
             ("Utrecht", "3511 AA", "Utrecht"), ("Eindhoven", "5611 AA", "Noord-Brabant"),
             ("Groningen", "9711 AA", "Groningen"), ("Den Haag", "2511 AA", "Zuid-Holland")),
            DUTCH_FIRST, DUTCH_LAST, ("2e verdieping", "Unit 7")),
    Country("SE", "SEK", "se", "+46 8 ### ## ##", "+46 70 ### ## ##", ("AB", "HB"),
            ("info", "kontakt", "order"),
            ("Storgatan", "Kungsgatan", "Drottninggatan", "Industrivägen", "Sveavägen", "Järnvägsgatan",
             "Kyrkogatan", "Hamngatan"), False,
            (("Stockholm", "111 20", "Stockholms län"), ("Göteborg", "411 01", "Västra Götaland"),
             ("Malmö", "211 20", "Skåne"), ("Uppsala", "753 20", "Uppsala län"),
             ("Västerås", "721 30", "Västmanland"), ("Linköping", "582 24", "Östergötland")),
            NORDIC_FIRST, NORDIC_LAST, ("Plan 2", "Hus B")),
    Country("FR", "EUR", "fr", "+33 1 ## ## ## ##", "+33 6 ## ## ## ##", ("SARL", "SA", "SAS"),
            ("contact", "info", "commercial"),
            ("Rue de la Paix", "Avenue Victor Hugo", "Rue du Commerce", "Boulevard Haussmann",
             "Rue de la République", "Place de la Gare", "Rue des Écoles"), True,
            (("Paris", "75001", "Île-de-France"), ("Lyon", "69001", "Auvergne-Rhône-Alpes"),
             ("Marseille", "13001", "Provence-Alpes-Côte d'Azur"), ("Toulouse", "31000", "Occitanie"),
             ("Lille", "59000", "Hauts-de-France"), ("Nantes", "44000", "Pays de la Loire")),
            FRENCH_FIRST, FRENCH_LAST, ("Bâtiment A", "3e étage", "BP 42")),
    Country("NO", "NOK", "no", "+47 ## ## ## ##", "+47 9# ## ## ##", ("AS", "ASA"),
            ("post", "firmapost", "salg"),
            ("Storgata", "Kirkegata", "Karl Johans gate", "Industriveien", "Strandgata", "Bryggen"), False,
            (("Oslo", "0150", "Oslo"), ("Bergen", "5003", "Vestland"), ("Trondheim", "7011", "Trøndelag"),
             ("Stavanger", "4006", "Rogaland")),
            NORDIC_FIRST, NORDIC_LAST, ("3. etasje",)),
    Country("PL", "PLN", "pl", "+48 22 ### ## ##", "+48 5## ### ###", ("Sp. z o.o.", "S.A."),
            ("biuro", "kontakt", "sprzedaz"),
            ("ul. Długa", "ul. Polna", "ul. Lipowa", "ul. Kwiatowa", "ul. Przemysłowa", "al. Jerozolimskie"),
            False,
            (("Warszawa", "00-001", "Mazowieckie"), ("Kraków", "30-001", "Małopolskie"),
             ("Gdańsk", "80-001", "Pomorskie"), ("Wrocław", "50-001", "Dolnośląskie"),
             ("Poznań", "60-001", "Wielkopolskie")),
            POLISH_FIRST, POLISH_LAST, ("lok. 12", "piętro 2")),
)
COUNTRY_WEIGHTS = (25, 20, 15, 12, 8, 8, 6, 3, 3)

COMPANY_WORDS = ("Nordlys", "Blue Harbor", "Fjord", "Alpine", "Summit", "Oakridge", "Meridian", "Northstar",
                 "Silverline", "Greenfield", "Ironbridge", "Bright", "Polar", "Coastal", "Crescent",
                 "Evergreen", "Falcon", "Granite", "Harbour", "Horizon", "Keystone", "Lakeside", "Maple",
                 "Nova", "Orion", "Pinnacle", "Redwood", "Riverbend", "Sapphire", "Skyline", "Stonegate",
                 "Sunrise", "Tidewater", "Trident", "Vanguard", "Westwind", "Zenith", "Atlas", "Beacon",
                 "Cobalt", "Delta", "Echo", "Frontier", "Gemini", "Highland", "Juniper", "Kestrel", "Lumen",
                 "Marine", "Nimbus", "Oasis", "Pioneer", "Quantum", "Rapid", "Solstice", "Titan", "Unity",
                 "Vertex", "Willow", "Apex", "Baltic", "Cedar", "Dune", "Ember", "Fusion", "Glacier",
                 "Helios", "Isle", "Jade", "Krone", "Linden", "Mistral", "Nordic", "Octave", "Prism",
                 "Quarry", "Saga", "Tundra", "Valhalla", "Viking")
TRADES = ("Logistics", "Engineering", "Foods", "Textiles", "Consulting", "Construction", "Electronics",
          "Automotive", "Packaging", "Pharma", "Furniture", "Trading", "Systems", "Solutions", "Energy",
          "Marine", "Metals", "Plastics", "Print", "Retail", "Software", "Supplies", "Tools", "Transport",
          "Agro", "Interiors", "Medical", "Optics", "Robotics", "Security", "Labs", "Design", "Imports",
          "Wholesale", "Hydraulics", "Instruments", "Components", "Coatings", "Chemicals", "Brewing")
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "gmx.de", "hotmail.com", "proton.me", "icloud.com")

JOB_TITLES = ("CEO", "CFO", "COO", "Purchasing Manager", "Buyer", "Sales Manager", "Account Manager",
              "Office Manager", "Accountant", "Controller", "IT Manager", "Logistics Coordinator",
              "Warehouse Manager", "Project Manager", "Production Manager", "Head of Procurement",
              "Marketing Manager", "Assistant", "Owner", "Managing Director", "Quality Manager", "Engineer",
              "Customer Service", "Finance Manager", "Operations Director")

ITEM_ADJECTIVES = ("Heavy-Duty", "Compact", "Ergonomic", "Industrial", "Premium", "Standard", "Deluxe",
                   "Light", "Professional", "Modular", "Portable", "Reinforced", "Eco", "Classic", "Advanced",
                   "Mini")
ITEM_MATERIALS = ("Steel", "Oak", "Aluminium", "Plastic", "Glass", "Leather", "Cotton", "Copper", "Bamboo",
                  "Carbon", "Rubber", "Ceramic", "Walnut", "Stainless", "Brass", "Nylon")
ITEM_PRODUCTS = ("Office Chair", "Desk", "Shelf", "Cabinet", "Toolbox", "Drill Bit Set", "Cable Reel", "Lamp",
                 "Storage Box", "Workbench", "Trolley", "Ladder", "Gloves", "Helmet", "Pallet Rack", "Fan",
                 "Conference Table", "Whiteboard", "Monitor Arm", "Filing Cabinet", "Safety Boots", "Pump",
                 "Valve", "Bearing", "Hose", "Bracket", "Fastener Kit", "Sensor", "Relay", "Switch")
ITEM_UNITS = (("PCS", 70), ("BOX", 10), ("KG", 6), ("PACK", 6), ("SET", 5), ("M", 3))

SERVICES = ("Installation", "Consulting", "Training", "Maintenance", "Support", "Repair", "Inspection",
            "Calibration", "Design", "Project Management", "Implementation", "Audit", "Delivery", "Setup")
SERVICE_LEVELS = ("Junior", "Senior", "Standard", "Express", "On-site", "Remote", "Weekend", "Premium")
MACHINES = ("Forklift", "CNC Lathe", "Crane", "Excavator", "Van", "Truck", "3D Printer", "Laser Cutter",
            "Welding Robot", "Compressor", "Scissor Lift", "Drill Press")

_ASCII = str.maketrans({
    "æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ê": "e",
    "â": "a", "à": "a", "î": "i", "ô": "o", "û": "u", "ç": "c", "ł": "l", "ń": "n", "ó": "o", "ś": "s",
    "ż": "z", "ź": "z", "ą": "a", "ę": "e", "ć": "c", "'": "", ".": "", "&": "", "/": "",
})


@cache
def slug(text: str, sep: str = "-") -> str:
    """ASCII, lower case, words joined by `sep`: "Müller & Søn" -> "mueller-soen"."""
    return sep.join(text.lower().translate(_ASCII).split())


def pick(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


def digits(rng: random.Random, pattern: str) -> str:
    """Fill each '#' of `pattern` with a digit."""
    template, n = _template(pattern)
    return template.format(*f"{int(rng.random() * 10 ** n):0{n}d}")


@cache
def _template(pattern: str) -> tuple[str, int]:
    return pattern.replace("#", "{}"), pattern.count("#")


def weighted(rng: random.Random, cumulative: Sequence[float]) -> int:
    """An index drawn with the weights whose running totals are `cumulative`."""
    return bisect(cumulative, rng.random() * cumulative[-1])


def running_totals(weights: Sequence[float]) -> tuple[float, ...]:
    return tuple(sum(weights[: i + 1]) for i in range(len(weights)))


def country(rng: random.Random) -> Country:
    return COUNTRIES[weighted(rng, _COUNTRY_CUM)]


_COUNTRY_CUM = running_totals(COUNTRY_WEIGHTS)
_UNIT_CUM = running_totals([w for _, w in ITEM_UNITS])


class Person(NamedTuple):
    first: str
    last: str


def person(rng: random.Random, where: Country) -> Person:
    """A name, mostly from `where`, sometimes from anywhere (people move)."""
    if rng.random() < 0.15:
        where = country(rng)
    return Person(pick(rng, where.first_names), pick(rng, where.last_names))


@cache
def mailbox(first: str, last: str) -> str:
    return f"{slug(first)}.{slug(last, '')}"


class Company(NamedTuple):
    name: str
    address: str
    address_2: str
    city: str
    post_code: str
    county: str
    country: str
    phone: str
    email: str
    home_page: str
    domain: str
    origin: Country


class Companies:
    """Makes company identities. Each gets its own web domain, so company (and staff) emails never collide."""

    def __init__(self) -> None:
        self._domains: dict[str, int] = {}

    def make(self, rng: random.Random, *, tag: str = "") -> Company:
        """A company; `tag` is appended to its domain name (to stay clear of domains made elsewhere)."""
        where = country(rng)
        form = pick(rng, where.legal_forms)
        shape = rng.random()
        if shape < 0.55:
            base = f"{pick(rng, COMPANY_WORDS)} {pick(rng, TRADES)}"
        elif shape < 0.8:
            base = f"{pick(rng, where.last_names)} {pick(rng, TRADES)}"
        else:
            base = f"{pick(rng, where.last_names)} & {pick(rng, where.last_names)}"
        name = f"{base} {form}"
        domain = self._unique(f"{slug(base)}{tag}.{where.tld}")
        city, post_code, county = where.cities[int(rng.random() * len(where.cities))]
        street = pick(rng, where.streets)
        number = 1 + int(rng.random() * rng.choice((20, 80, 250)))
        address = f"{number} {street}" if where.number_first else f"{street} {number}"
        address_2 = pick(rng, where.second_lines) if rng.random() < 0.15 else ""
        return Company(name=name, address=address, address_2=address_2, city=city, post_code=post_code,
                       county=county, country=where.code, phone=digits(rng, where.phone),
                       email=f"{pick(rng, where.mailboxes)}@{domain}", home_page=f"www.{domain}",
                       domain=domain, origin=where)

    def _unique(self, domain: str) -> str:
        seen = self._domains.get(domain, 0)
        self._domains[domain] = seen + 1
        if not seen:
            return domain
        label, _, tld = domain.partition(".")
        return f"{label}{seen + 1}.{tld}"


def item_description(rng: random.Random) -> str:
    return f"{pick(rng, ITEM_ADJECTIVES)} {pick(rng, ITEM_MATERIALS)} {pick(rng, ITEM_PRODUCTS)}"


def item_unit(rng: random.Random) -> str:
    return ITEM_UNITS[weighted(rng, _UNIT_CUM)][0]


def service_name(rng: random.Random) -> str:
    return f"{pick(rng, SERVICES)} - {pick(rng, SERVICE_LEVELS)}"


def machine_name(rng: random.Random) -> str:
    return f"{pick(rng, MACHINES)} {1 + int(rng.random() * 12)}"


def typo(rng: random.Random, email: str) -> str:
    """The same address with one character of its mailbox replaced: a plausible typing error."""
    local, _, domain = email.partition("@")
    at = int(rng.random() * len(local))
    current = local[at]
    replacement = "x" if current != "x" else "y"
    if current.isalpha():
        replacement = "abcdefghijklmnopqrstuvwxyz".replace(current.lower(), "")[int(rng.random() * 25)]
    return f"{local[:at]}{replacement}{local[at + 1:]}@{domain}"
