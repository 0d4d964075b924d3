"""Clip art of real objects from two Debian packages, as a source of object art beside the emoji.

Every emoji style draws a class the same few ways (a gold coin, a cartoon cat sitting), and
the held-out style draws some classes otherwise (a silver coin, a realistic tabby). Two Debian
packages hold clip art cut out on transparent backgrounds:
- `tuxpaint-stamps-default` (GPL-2): about a thousand stamps for children's painting, many of
  them photographs of real animals, fruit, tools and vehicles;
- `openclipart-png` (public domain): the Open Clip Art Library's drawings.
TUX_STAMPS maps 116 of the 198 classes to stamps, CLIPART 42 of the others to Open Clip Art
drawings, each showing the same thing as the class's emoji (hand-picked from the file names and
checked by eye: `python -m tiny_vlm_train.clipart --sheet FILE.png` draws them all). The styles
`clipart` and `clipart2` (sprites.EXTRA_STYLES) take each class's first and second picture (the
first again where there is one); the 40 classes without one come from a kin emoji style.
"""

from __future__ import annotations

from pathlib import Path

STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
OPENCLIPART_DIR = Path("/usr/share/openclipart/png")
TUX_STAMPS = {  # class -> stamp files under STAMPS_DIR, best match first
    "dog": ["animals/mammals/dogs/dog.png"],
    "cat": ["animals/mammals/cats/kitten.svg", "seasonal/halloween/blackcat.png"],
    "mouse": ["animals/mammals/rodents/mouse.png"],
    "rabbit": ["animals/mammals/rodents/rabbit.png", "animals/mammals/rabbit_little.png"],
    "pig": ["animals/mammals/pig.png"],
    "cow": ["animals/mammals/bovines/cow.png", "animals/mammals/bovines/cow_white.png"],
    "horse": ["animals/mammals/equines/horse.png"],
    "tiger": ["animals/mammals/cats/tiger.png", "animals/mammals/cats/tiger_sumatran.png"],
    "sheep": ["animals/mammals/bovines/sheep.png"],
    "camel": ["animals/mammals/camel/dromedary.png"],
    "giraffe": ["animals/mammals/giraffe.png"],
    "elephant": ["animals/mammals/elephant.png"],
    "rhinoceros": ["animals/mammals/rhino_black.png"],
    "gorilla": ["animals/mammals/apes/gorilla.png"],
    "bear": ["animals/mammals/bears/bear.png", "animals/mammals/bears/european-bear.png"],
    "fox": ["animals/mammals/dogs/fox.png"],
    "lion": ["animals/mammals/cats/lion.png", "animals/mammals/cats/lion-2.png"],
    "zebra": ["animals/mammals/equines/zebra.png"],
    "deer": ["animals/mammals/deer/deer.png", "animals/mammals/deer/wapiti.png"],
    "kangaroo": ["animals/marsupials/kangaroo.png"],
    "hedgehog": ["animals/mammals/hedgehog.png"],
    "dinosaur": ["animals/dinosaur/cartoon/dinosaurSings.png"],
    "frog": ["animals/amphibians/frog.png", "animals/amphibians/frog-1.png"],
    "whale": ["animals/mammals/aquatic/whale.png"],
    "fish": ["animals/fish/coraltrout.png", "animals/fish/bluegroper.png"],
    "dolphin": ["animals/mammals/aquatic/dolphin.png"],
    "lobster": ["animals/fish/lobster.png"],
    "snail": ["animals/insects/cartoon/snail.png", "animals/insects/cartoon/snail2.png"],
    "bee": ["animals/insects/bee.png"],
    "ladybug": ["animals/insects/cartoon/ladybug.png"],
    "butterfly": ["animals/insects/cartoon/butterfly.png", "seasonal/easter/butterfly.png"],
    "rooster": ["animals/birds/rooster.png"],
    "chick": ["seasonal/easter/chick.png"],
    "penguin": ["animals/birds/penguin.png", "animals/birds/magellanic_penguin.png"],
    "duck": ["animals/birds/duck.png", "animals/birds/drake.png"],
    "owl": ["animals/birds/owl.png"],
    "peacock": ["animals/birds/peacock.png"],
    "parrot": ["animals/birds/rainbow-lorikeet.png"],
    "flamingo": ["animals/birds/pink_flamingo.png"],
    "palm tree": ["plants/trees/liberia-palm.png"],
    "tree": ["plants/trees/holm_oak.png", "plants/trees/tree336.png"],
    "mushroom": ["plants/toadstool.svg", "food/vegetables/mushroom.png"],
    "rose": ["plants/flowers/rose.png"],
    "clover": ["seasonal/clover.svg"],
    "tomato": ["food/vegetables/tomato.png"],
    "watermelon": ["food/fruit/cartoon/watermelon.svg"],
    "orange": ["food/fruit/mandarine.png", "food/fruit/orange.png"],
    "lemon": ["food/fruit/lemon.png", "food/fruit/cartoon/lemon.png"],
    "banana": ["food/fruit/banana.png", "food/fruit/cartoon/banana.png"],
    "pineapple": ["food/fruit/pineapple.png", "food/fruit/cartoon/pineapple.png"],
    "apple": ["food/fruit/apple_red.png", "food/fruit/apple_fuji.png"],
    "pear": ["food/fruit/pear.png", "food/fruit/cartoon/pear.png"],
    "peach": ["food/fruit/cartoon/peach.png"],
    "strawberry": ["food/fruit/strawberry.png", "food/fruit/cartoon/strawberry.png"],
    "ear of corn": ["food/vegetables/corn.png"],
    "eggplant": ["food/vegetables/eggplant.png"],
    "avocado": ["food/fruit/avocado.png"],
    "potato": ["food/vegetables/potato.png"],
    "carrot": ["food/vegetables/carrot.png"],
    "broccoli": ["food/vegetables/broccoli.png"],
    "onion": ["food/vegetables/onion.png"],
    "bell pepper": ["food/vegetables/pepper.png", "food/vegetables/yellowpepper.png"],
    "pizza": ["food/pizza.png"],
    "teapot": ["household/dishes/teapot.png"],
    "cup of coffee": ["household/dishes/coffeecup.svg", "household/dishes/expresso.svg"],
    "spoon": ["household/dishes/spoon.svg"],
    "top hat": ["clothes/hats/tophat.png"],
    "crown": ["clothes/hats/crown1.svg", "clothes/hats/crown2.svg"],
    "t-shirt": ["clothes/t_tshirt.png", "clothes/t-shirt_01.svg"],
    "dress": ["clothes/black_dress.svg"],
    "handbag": ["clothes/red_handbag.svg"],
    "high heel": ["clothes/red_highheel.svg"],
    "boot": ["clothes/hikingboot.svg"],
    "cap": ["clothes/t_baseballcap.png"],
    "basketball": ["sports/basketball.png"],
    "american football": ["sports/football.png"],
    "tennis ball": ["sports/tennis_ball.png"],
    "soccer ball": ["sports/soccer.png"],
    "teddy bear": ["animals/mammals/bears/cartoon/teddy_bear.png", "animals/mammals/bears/toys/edward_bear.png"],
    "kite": ["hobbies/kite.svg"],
    "trophy": ["sports/trophy_cup.png"],
    "balloon": ["seasonal/balloon.svg"],
    "gift": ["seasonal/christmas/present.svg"],
    "jack-o-lantern": ["seasonal/halloween/jackolantern_mean.png"],
    "guitar": ["hobbies/music/string/guitar_classical.png", "hobbies/music/string/guitar2.png"],
    "trumpet": ["hobbies/music/brass/trumpet.png"],
    "violin": ["hobbies/music/string/violin.png", "hobbies/music/string/violin2.svg"],
    "drum": ["hobbies/music/percussion/drum_tomtom_floor.png"],
    "light bulb": ["household/Lightbulb.png"],
    "laptop": ["household/electronics/laptop.svg"],
    "mobile phone": ["household/electronics/mobile.svg"],
    "camera": ["household/electronics/camera.svg", "hobbies/camera_35mm.png"],
    "wrench": ["household/tools/wrench.png", "household/tools/wrench_adjustable.png"],
    "hammer": ["household/tools/hammer.png", "household/tools/hammer2.svg"],
    "toolbox": ["household/tools/toolbox.png"],
    "saw": ["household/tools/saw.png"],
    "key": ["household/key.png"],
    "padlock": ["household/padlock_closed.svg"],
    "mailbox": ["town/usps_mailbox.png"],
    "coin": ["symbols/money/us/coins/025quarter.png", "symbols/money/euro/coins/100.png"],
    "toilet": ["household/toilet.png"],
    "umbrella": ["household/umbrella.svg"],
    "locomotive": ["vehicles/locomotive/cartoon/toy_train.png"],
    "bus": ["vehicles/iso_bus.svg", "vehicles/masstransit/cartoon/schoolbus.svg"],
    "fire truck": ["vehicles/emergency/firetruck.png", "vehicles/iso_fireengine.svg"],
    "car": ["vehicles/auto/sedan.png", "vehicles/auto/beetle.png"],
    "truck": ["vehicles/auto/truck.png", "vehicles/blue_truck.svg"],
    "tractor": ["vehicles/farming/cartoon/tractor.svg"],
    "bicycle": ["vehicles/cycle/bluebike.svg"],
    "helicopter": ["vehicles/flight/cartoon/eddieCopter.png"],
    "rocket": ["space/rocket1.svg", "space/rocket2.svg"],
    "sailboat": ["vehicles/ship/sail_boat1.svg", "vehicles/ship/sail_boat2.svg"],
    "traffic light": ["town/roadsigns/stoplight_01_red.png", "town/roadsigns/stoplight_03_green.png"],
    "stop sign": ["town/roadsigns/stop.png"],
    "tent": ["town/houses/cartoon/tent.png"],
    "house": ["town/houses/cartoon/pinkhome.png", "town/houses/cartoon/wooden_cottage.png"],
}

CLIPART = {  # class -> Open Clip Art files under OPENCLIPART_DIR, for classes without a stamp
    "monkey": ["animals/mammals/happy_monkey_benji_park_01.png", "animals/mammals/monkey_head_nicu_buculei_01.png"],
    "turtle": ["animals/turtle_jurgen_gaeremyn_01.png"],
    "caterpillar": ["animals/bugs/caterpillar_david_wislon_01.png"],
    "cactus": ["plants/cacuts_01.png"],
    "pine tree": ["plants/trees/evergreen/simple_evergreen_with_highlights_01.png", "plants/trees/evergreen/tree.png"],
    "potted plant": ["plants/flowers/flowerandpot_daniel_ste_r.png", "plants/flowers/geranium_ganson.png"],
    "tulip": ["plants/tulips_ganson.png"],
    "maple leaf": ["plants/fall_coloured_leaf_geral_01.png"],
    "hot dog": ["food/meats_and_eggs/hot_dog.png", "food/meats_and_eggs/hot_dog_juliane_krug_r.png"],
    "hamburger": ["food/meats_and_eggs/hamburger_ganson.png", "food/meats_and_eggs/burger_http_www.treebui_r.png"],
    "croissant": ["food/breads_and_carbs/croissant_01.png", "food/breads_and_carbs/croissant_gerald_g._01.png"],
    "fried egg": ["food/meats_and_eggs/fried_egg.png"],
    "pretzel": ["food/breads_and_carbs/pretzel_01.png"],
    "sandwich": ["unsorted/tramezzino.png", "food/sandwich_one_jean-victor_01.png"],
    "waffle": ["food/desserts/gauffre_au_chocolat_01.png"],
    "lollipop": ["food/desserts/lollipop_dave_pena_01.png", "food/desserts/candy_30.png"],
    "cupcake": ["food/desserts/muffin_jean_victor_balin_.png"],
    "ice cream cone": ["food/desserts/cone1_ganson.png", "food/desserts/cone_soft_chocolate.png"],
    "wine glass": ["food/beverages/alcohol/wine_glass_christian_h._.png"],
    "beer mug": ["food/beverages/alcohol/beer.png"],
    "sneaker": ["people/clothing/tennis_shoe_jarno_vasama_.png"],
    "backpack": ["unsorted/zaino_per_montagna.png"],
    "baseball": ["recreation/sports/basebalm_ganson.png"],
    "bowling ball": ["recreation/sports/blowling_ball_01.png"],
    "ping pong paddle": ["recreation/sports/table_tennis_racquets_o_01r.png"],
    "pool ball": ["recreation/sports/8_ball_jarno_vasamaa.png", "recreation/sports/9_ball_jarno_vasamaa.png"],
    "dartboard": ["recreation/sports/dartboard_ruud_steltenpo_01.png"],
    "game controller": ["computer/joypad_the_mad_processor_.png", "computer/games/xbox-controller_01.png"],
    "piano": ["recreation/music/piano_geraint_luff_01.png"],
    "television": ["buildings/furniture/television_peterm_.png", "computer/tv_zazou.png"],
    "telescope": ["geography/spyglass_vladimir_hernan_01.png"],
    "axe": ["tools/axe_peterm_.png"],
    "ladder": ["unsorted/scala_doppia.png"],
    "package": ["containers/closed_box_juliane_krug_r.png", "containers/cardboard_box_jarno_vasa_.png"],
    "book": ["education/books/book_01.png", "education/books/closed_book_01.png"],
    "alarm clock": ["signs_and_symbols/clocks/alarm_clock_mike_powers_.png"],
    "chair": ["buildings/furniture/sedia_in_legno_architett_01.png"],
    "basket": ["containers/cesto_architetto_frances_01.png"],
    "suitcase": ["transportation/little_tan_suitcase_jona_.png"],
    "ambulance": ["unsorted/ambulanza.png"],
    "ship": ["transportation/vehicles/trawler_01.png"],
    "anchor": ["transportation/anchor.png"],
}


def clipart_files(label: str) -> list[Path]:
    """A class's pictures, best first: its stamps, else its Open Clip Art drawings ([] if none)."""
    if label in TUX_STAMPS:
        return [STAMPS_DIR / f for f in TUX_STAMPS[label]]
    return [OPENCLIPART_DIR / f for f in CLIPART.get(label, [])]


def clipart_path(label: str, variant: int) -> Path | None:
    """A class's picture number `variant` (counting through its list, wrapping), or None."""
    files = clipart_files(label)
    return files[variant % len(files)] if files else None


def main(argv=None) -> None:
    import argparse
    import json

    import numpy as np
    from PIL import Image

    from .sprites import SPRITE, load_clipart, to_sprite

    ap = argparse.ArgumentParser(description="Draw every picture of TUX_STAMPS and CLIPART on one contact sheet, to check the mapping by eye.")
    ap.add_argument("--sheet", required=True, help="output PNG")
    ap.add_argument("--cols", type=int, default=16)
    args = ap.parse_args(argv)
    tiles = []
    for label in [*TUX_STAMPS, *CLIPART]:
        for path in clipart_files(label):
            sp = to_sprite(load_clipart(path))
            a = sp[..., 3:].astype(np.float32) / 255
            tiles.append(sp[..., :3] * a + 255 * (1 - a))
    rows = -(-len(tiles) // args.cols)
    sheet = np.full((rows * SPRITE, args.cols * SPRITE, 3), 255, np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, args.cols)
        sheet[r * SPRITE:(r + 1) * SPRITE, c * SPRITE:(c + 1) * SPRITE] = t
    Image.fromarray(sheet.astype(np.uint8)).save(args.sheet)
    print(json.dumps({"classes": len(TUX_STAMPS) + len(CLIPART), "pictures": len(tiles), "sheet": args.sheet}))


if __name__ == "__main__":
    main()
