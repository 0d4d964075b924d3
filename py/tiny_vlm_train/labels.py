"""The object vocabulary: hand-curated concrete nouns from emoji metadata.

Each class is one unambiguous concept with one emoji. Faces, people, symbols, flags,
abstract items, plural-only things and near-duplicates across styles (several clocks,
dog vs dog face, cow vs ox) were left out. `build_labels()` joins this table with the
`emoji-datasource` metadata (codepoints) and keeps only classes drawn in every style.

    python -m tiny_vlm_train.labels out/labels.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (emoji-datasource short_name, name, plural)
CLASSES: tuple[tuple[str, str, str], ...] = (
    # animals
    ("dog2", "dog", "dogs"), ("cat2", "cat", "cats"), ("mouse2", "mouse", "mice"),
    ("rabbit2", "rabbit", "rabbits"), ("pig2", "pig", "pigs"), ("cow2", "cow", "cows"),
    ("racehorse", "horse", "horses"), ("tiger2", "tiger", "tigers"), ("leopard", "leopard", "leopards"),
    ("sheep", "sheep", "sheep"), ("goat", "goat", "goats"), ("dromedary_camel", "camel", "camels"),
    ("llama", "llama", "llamas"), ("giraffe_face", "giraffe", "giraffes"), ("elephant", "elephant", "elephants"),
    ("rhinoceros", "rhinoceros", "rhinoceroses"), ("hippopotamus", "hippo", "hippos"), ("gorilla", "gorilla", "gorillas"),
    ("monkey", "monkey", "monkeys"), ("bear", "bear", "bears"), ("panda_face", "panda", "pandas"),
    ("fox_face", "fox", "foxes"), ("lion_face", "lion", "lions"), ("zebra_face", "zebra", "zebras"),
    ("deer", "deer", "deer"), ("kangaroo", "kangaroo", "kangaroos"), ("hedgehog", "hedgehog", "hedgehogs"),
    ("bat", "bat", "bats"), ("sloth", "sloth", "sloths"), ("otter", "otter", "otters"),
    ("skunk", "skunk", "skunks"), ("raccoon", "raccoon", "raccoons"),
    ("crocodile", "crocodile", "crocodiles"), ("snake", "snake", "snakes"), ("turtle", "turtle", "turtles"),
    ("lizard", "lizard", "lizards"), ("sauropod", "dinosaur", "dinosaurs"), ("frog", "frog", "frogs"),
    ("whale2", "whale", "whales"), ("octopus", "octopus", "octopuses"), ("shell", "seashell", "seashells"),
    ("fish", "fish", "fish"), ("blowfish", "pufferfish", "pufferfish"), ("dolphin", "dolphin", "dolphins"),
    ("crab", "crab", "crabs"), ("shark", "shark", "sharks"), ("shrimp", "shrimp", "shrimps"),
    ("squid", "squid", "squids"), ("lobster", "lobster", "lobsters"), ("jellyfish", "jellyfish", "jellyfish"),
    ("snail", "snail", "snails"), ("bug", "caterpillar", "caterpillars"), ("ant", "ant", "ants"),
    ("bee", "bee", "bees"), ("ladybug", "ladybug", "ladybugs"), ("scorpion", "scorpion", "scorpions"),
    ("butterfly", "butterfly", "butterflies"), ("worm", "worm", "worms"),
    ("rooster", "rooster", "roosters"), ("baby_chick", "chick", "chicks"), ("penguin", "penguin", "penguins"),
    ("turkey", "turkey", "turkeys"), ("eagle", "eagle", "eagles"), ("duck", "duck", "ducks"),
    ("owl", "owl", "owls"), ("peacock", "peacock", "peacocks"), ("parrot", "parrot", "parrots"),
    ("swan", "swan", "swans"), ("flamingo", "flamingo", "flamingos"), ("feather", "feather", "feathers"),
    # plants
    ("cactus", "cactus", "cacti"), ("palm_tree", "palm tree", "palm trees"), ("evergreen_tree", "pine tree", "pine trees"),
    ("deciduous_tree", "tree", "trees"), ("mushroom", "mushroom", "mushrooms"), ("potted_plant", "potted plant", "potted plants"),
    ("tulip", "tulip", "tulips"), ("rose", "rose", "roses"), ("sunflower", "sunflower", "sunflowers"),
    ("four_leaf_clover", "clover", "clovers"), ("maple_leaf", "maple leaf", "maple leaves"),
    # fruit and vegetables
    ("tomato", "tomato", "tomatoes"), ("watermelon", "watermelon", "watermelons"), ("tangerine", "orange", "oranges"),
    ("lemon", "lemon", "lemons"), ("banana", "banana", "bananas"), ("pineapple", "pineapple", "pineapples"),
    ("apple", "apple", "apples"), ("pear", "pear", "pears"), ("peach", "peach", "peaches"),
    ("strawberry", "strawberry", "strawberries"), ("kiwifruit", "kiwi", "kiwis"), ("coconut", "coconut", "coconuts"),
    ("mango", "mango", "mangoes"), ("corn", "ear of corn", "ears of corn"), ("eggplant", "eggplant", "eggplants"),
    ("avocado", "avocado", "avocados"), ("cucumber", "cucumber", "cucumbers"), ("potato", "potato", "potatoes"),
    ("carrot", "carrot", "carrots"), ("broccoli", "broccoli", "broccolis"), ("garlic", "garlic", "garlics"),
    ("onion", "onion", "onions"), ("bell_pepper", "bell pepper", "bell peppers"),
    # food and drink
    ("hotdog", "hot dog", "hot dogs"), ("taco", "taco", "tacos"), ("hamburger", "hamburger", "hamburgers"),
    ("pizza", "pizza", "pizzas"), ("croissant", "croissant", "croissants"), ("baguette_bread", "baguette", "baguettes"),
    ("fried_egg", "fried egg", "fried eggs"), ("egg", "egg", "eggs"), ("pretzel", "pretzel", "pretzels"),
    ("sandwich", "sandwich", "sandwiches"), ("cheese_wedge", "cheese", "cheeses"), ("waffle", "waffle", "waffles"),
    ("doughnut", "doughnut", "doughnuts"), ("cookie", "cookie", "cookies"), ("lollipop", "lollipop", "lollipops"),
    ("candy", "candy", "candies"), ("cupcake", "cupcake", "cupcakes"), ("icecream", "ice cream cone", "ice cream cones"),
    ("chocolate_bar", "chocolate bar", "chocolate bars"), ("honey_pot", "honey pot", "honey pots"), ("sushi", "sushi", "sushis"),
    ("rice_ball", "rice ball", "rice balls"), ("teapot", "teapot", "teapots"), ("coffee", "cup of coffee", "cups of coffee"),
    ("wine_glass", "wine glass", "wine glasses"), ("beer", "beer mug", "beer mugs"), ("baby_bottle", "baby bottle", "baby bottles"),
    ("glass_of_milk", "glass of milk", "glasses of milk"), ("spoon", "spoon", "spoons"),
    # clothing
    ("tophat", "top hat", "top hats"), ("crown", "crown", "crowns"), ("necktie", "tie", "ties"),
    ("shirt", "t-shirt", "t-shirts"), ("dress", "dress", "dresses"), ("bikini", "bikini", "bikinis"),
    ("handbag", "handbag", "handbags"), ("athletic_shoe", "sneaker", "sneakers"), ("high_heel", "high heel", "high heels"),
    ("boot", "boot", "boots"), ("lipstick", "lipstick", "lipsticks"), ("ring", "ring", "rings"),
    ("gem", "gem", "gems"), ("billed_cap", "cap", "caps"), ("scarf", "scarf", "scarves"),
    ("coat", "coat", "coats"), ("school_satchel", "backpack", "backpacks"), ("mortar_board", "graduation cap", "graduation caps"),
    # sports and games
    ("basketball", "basketball", "basketballs"), ("football", "american football", "american footballs"),
    ("tennis", "tennis ball", "tennis balls"), ("volleyball", "volleyball", "volleyballs"), ("soccer", "soccer ball", "soccer balls"),
    ("baseball", "baseball", "baseballs"), ("bowling", "bowling ball", "bowling balls"), ("boxing_glove", "boxing glove", "boxing gloves"),
    ("table_tennis_paddle_and_ball", "ping pong paddle", "ping pong paddles"), ("flying_disc", "frisbee", "frisbees"),
    ("8ball", "pool ball", "pool balls"), ("dart", "dartboard", "dartboards"), ("game_die", "die", "dice"),
    ("jigsaw", "puzzle piece", "puzzle pieces"), ("teddy_bear", "teddy bear", "teddy bears"), ("yo-yo", "yo-yo", "yo-yos"),
    ("kite", "kite", "kites"), ("video_game", "game controller", "game controllers"), ("trophy", "trophy", "trophies"),
    ("sports_medal", "medal", "medals"), ("skateboard", "skateboard", "skateboards"), ("roller_skate", "roller skate", "roller skates"),
    ("balloon", "balloon", "balloons"), ("gift", "gift", "gifts"), ("christmas_tree", "christmas tree", "christmas trees"),
    ("jack_o_lantern", "jack-o-lantern", "jack-o-lanterns"), ("crystal_ball", "crystal ball", "crystal balls"),
    # music
    ("saxophone", "saxophone", "saxophones"), ("guitar", "guitar", "guitars"), ("musical_keyboard", "piano", "pianos"),
    ("trumpet", "trumpet", "trumpets"), ("violin", "violin", "violins"), ("drum_with_drumsticks", "drum", "drums"),
    ("banjo", "banjo", "banjos"), ("accordion", "accordion", "accordions"), ("microphone", "microphone", "microphones"),
    ("radio", "radio", "radios"),
    # household, tools, electronics
    ("tv", "television", "televisions"), ("bulb", "light bulb", "light bulbs"), ("flashlight", "flashlight", "flashlights"),
    ("computer", "laptop", "laptops"), ("iphone", "mobile phone", "mobile phones"), ("battery", "battery", "batteries"),
    ("camera", "camera", "cameras"), ("microscope", "microscope", "microscopes"), ("telescope", "telescope", "telescopes"),
    ("magnet", "magnet", "magnets"), ("wrench", "wrench", "wrenches"), ("hammer", "hammer", "hammers"),
    ("toolbox", "toolbox", "toolboxes"), ("axe", "axe", "axes"), ("carpentry_saw", "saw", "saws"),
    ("screwdriver", "screwdriver", "screwdrivers"), ("ladder", "ladder", "ladders"), ("key", "key", "keys"),
    ("lock", "padlock", "padlocks"), ("bell", "bell", "bells"), ("package", "package", "packages"),
    ("mailbox", "mailbox", "mailboxes"), ("book", "book", "books"), ("scroll", "scroll", "scrolls"),
    ("paperclip", "paperclip", "paperclips"), ("straight_ruler", "ruler", "rulers"), ("briefcase", "briefcase", "briefcases"),
    ("syringe", "syringe", "syringes"), ("pill", "pill", "pills"), ("moneybag", "money bag", "money bags"),
    ("coin", "coin", "coins"), ("watch", "wristwatch", "wristwatches"), ("hourglass", "hourglass", "hourglasses"),
    ("alarm_clock", "alarm clock", "alarm clocks"), ("door", "door", "doors"), ("toilet", "toilet", "toilets"),
    ("bathtub", "bathtub", "bathtubs"), ("chair", "chair", "chairs"), ("broom", "broom", "brooms"),
    ("basket", "basket", "baskets"), ("roll_of_paper", "toilet paper", "toilet papers"), ("sponge", "sponge", "sponges"),
    ("bucket", "bucket", "buckets"), ("toothbrush", "toothbrush", "toothbrushes"), ("plunger", "plunger", "plungers"),
    ("shopping_trolley", "shopping cart", "shopping carts"), ("fire_extinguisher", "fire extinguisher", "fire extinguishers"),
    ("luggage", "suitcase", "suitcases"), ("closed_umbrella", "umbrella", "umbrellas"), ("candle", "candle", "candles"),
    # vehicles and places
    ("steam_locomotive", "locomotive", "locomotives"), ("bus", "bus", "buses"), ("ambulance", "ambulance", "ambulances"),
    ("fire_engine", "fire truck", "fire trucks"), ("police_car", "police car", "police cars"), ("taxi", "taxi", "taxis"),
    ("car", "car", "cars"), ("truck", "truck", "trucks"), ("tractor", "tractor", "tractors"),
    ("bike", "bicycle", "bicycles"), ("scooter", "kick scooter", "kick scooters"), ("helicopter", "helicopter", "helicopters"),
    ("rocket", "rocket", "rockets"), ("parachute", "parachute", "parachutes"), ("ship", "ship", "ships"),
    ("speedboat", "speedboat", "speedboats"), ("canoe", "canoe", "canoes"), ("boat", "sailboat", "sailboats"),
    ("anchor", "anchor", "anchors"), ("traffic_light", "traffic light", "traffic lights"), ("octagonal_sign", "stop sign", "stop signs"),
    ("fuelpump", "fuel pump", "fuel pumps"), ("ferris_wheel", "ferris wheel", "ferris wheels"), ("tent", "tent", "tents"),
    ("house", "house", "houses"), ("snowman_without_snow", "snowman", "snowmen"),
)


# Curated but not shipped in the default model: look-alikes of another class in some
# style, or thin/small drawings that vanish at 20-30 px. Kept here so a larger model can
# take them back.
LEFT_OUT = frozenset({
    "leopard", "goat", "hippo", "bat", "sloth", "otter", "skunk", "raccoon", "lizard", "pufferfish",
    "squid", "shrimp", "worm", "ant", "scorpion", "turkey", "eagle", "swan", "feather", "garlic",
    "mango", "coconut", "kiwi", "cheese", "rice ball", "candy", "honey pot", "baby bottle",
    "glass of milk", "scarf", "coat", "bikini", "lipstick", "gem", "graduation cap", "medal", "yo-yo",
    "crystal ball", "volleyball", "puzzle piece", "christmas tree", "accordion", "banjo", "radio",
    "flashlight", "battery", "magnet", "screwdriver", "scroll", "paperclip", "ruler", "syringe",
    "hourglass", "broom", "sponge", "plunger", "toilet paper", "bucket", "toothbrush",
    "fire extinguisher", "candle", "speedboat", "canoe", "fuel pump", "snowman", "die",
})


def emoji_metadata(npm_root: Path) -> dict[str, dict]:
    """short_name -> emoji-datasource entry."""
    path = npm_root / "emoji-datasource" / "emoji.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: install the training sources first (python -m tiny_vlm_train.assets)")
    data = json.loads(path.read_text())
    return {name: e for e in data for name in e["short_names"]}


def build_labels(npm_root: Path, available=None) -> list[dict]:
    """Labels in CLASSES order; `available(entry) -> bool` may drop classes missing in a style."""
    meta = emoji_metadata(npm_root)
    names = [c[1] for c in CLASSES]
    assert len(set(names)) == len(names), "duplicate class names"
    out = []
    for short, name, plural in CLASSES:
        if name in LEFT_OUT:
            continue
        e = meta.get(short)
        if e is None:
            raise KeyError(f"emoji short_name {short!r} not in emoji-datasource")
        if available is not None and not available(e):
            print(f"labels: dropping {name!r} ({short}): missing in a style", file=sys.stderr)
            continue
        cps = e["unified"]
        emoji = "".join(chr(int(c, 16)) for c in cps.split("-"))
        out.append({"name": name, "plural": plural, "emoji": emoji, "codepoints": cps})
    return out


def load_labels(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text())


if __name__ == "__main__":
    from .assets import npm_root

    labels = build_labels(npm_root())
    Path(sys.argv[1]).write_text(json.dumps(labels, ensure_ascii=False, indent=1))
    print(len(labels), "classes")
