"""Photo-like OCR scenes, made the same way on every run (seeded): camera-preview sizes
(2160×1440 landscape, 1440×1920 portrait) with many text regions on textured backgrounds, the way
real photos of signs, menus, shelves, receipts and notes are, not one rendered line on white.

Each scene is laid out on flat surfaces (a sign board, a menu card, a receipt, a notebook page,
shelf labels) over a cluttered, noisy background; then the whole photo goes through what a camera
does to it: a perspective warp, a little blur, uneven light (one scene in low light) and noise,
and JPEG at a phone's quality. Some text is small print, one sign is vertical Chinese, notes are
"handwritten" (each character jittered in size, angle and position).

`scenes()` gives each photo with the strings drawn on it, the ones a reader should find.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from testing.images import encode, font

LANDSCAPE = (2160, 1440)
PORTRAIT = (1440, 1920)


@dataclass
class Scene:
    name: str
    data: bytes
    # Every string drawn, in drawing order.
    lines: list[str]


class Canvas:
    """A photo being made: an RGB image, a seeded random source, and the strings drawn on it."""

    def __init__(self, image: Image.Image, rng: random.Random, noise: np.random.Generator) -> None:
        self.random = rng
        self.numpy = noise
        self.image = image
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[str] = []

    @classmethod
    def photo(cls, size: tuple[int, int], seed: int) -> Canvas:
        noise = np.random.default_rng(seed)
        canvas = cls(Image.fromarray(_texture(size, noise)), random.Random(seed), noise)
        canvas._clutter()
        return canvas

    def sheet(self, size: tuple[int, int], colour: tuple[int, int, int]) -> Canvas:
        """A plain sheet (paper) drawn on apart, then laid into the photo with `lay`."""
        return Canvas(Image.new("RGB", size, colour), self.random, self.numpy)

    def lay(self, sheet: Canvas, position: tuple[int, int], angle: float) -> None:
        turned = sheet.image.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
        shape = Image.new("L", sheet.image.size, 255).rotate(angle, expand=True)
        self.image.paste(turned, position, shape)
        self.lines += sheet.lines

    def _clutter(self) -> None:
        """Objects behind the text: coloured shapes of all sizes."""
        width, height = self.image.size
        for _ in range(14):
            x, y = self.random.randrange(width), self.random.randrange(height)
            w, h = self.random.randrange(80, 600), self.random.randrange(80, 600)
            colour = tuple(self.random.randrange(30, 230) for _ in range(3))
            shape = self.draw.ellipse if self.random.random() < 0.4 else self.draw.rectangle
            shape((x, y, x + w, y + h), fill=colour)

    def board(self, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
        """A flat surface to write on (a sign, a card, a page), with a slight shade across it."""
        left, top, right, bottom = box
        shade = np.linspace(0.85, 1.05, right - left)[None, :, None]
        surface = np.clip(np.full((bottom - top, right - left, 3), colour, np.float32) * shade, 0, 255)
        self.image.paste(Image.fromarray(surface.astype(np.uint8)), (left, top))

    def text(self, position: tuple[int, int], line: str, size: int, fill: tuple[int, int, int] = (20, 20, 20)) -> None:
        self.draw.text(position, line, font=font(size), fill=fill)
        self.lines.append(line)

    def vertical(self, position: tuple[int, int], line: str, size: int, fill: tuple[int, int, int]) -> None:
        """Chinese written top to bottom, one character under the other."""
        x, y = position
        for i, char in enumerate(line):
            self.draw.text((x, y + i * int(size * 1.15)), char, font=font(size), fill=fill)
        self.lines.append(line)

    def handwritten(self, position: tuple[int, int], line: str, size: int) -> None:
        """Each character drawn a little off: size, angle, baseline and spacing jittered."""
        x, y = position
        for char in line:
            glyph_size = int(size * self.random.uniform(0.9, 1.1))
            glyph = Image.new("L", (glyph_size * 2, glyph_size * 2), 0)
            ImageDraw.Draw(glyph).text((glyph_size // 2, glyph_size // 3), char, font=font(glyph_size), fill=255)
            glyph = glyph.rotate(self.random.uniform(-8, 8), resample=Image.Resampling.BILINEAR)
            ink = Image.new("RGB", glyph.size, (25, 35, 110))
            self.image.paste(ink, (x - glyph_size // 2, y + self.random.randint(-3, 3)), glyph)
            x += int(font(glyph_size).getlength(char) * self.random.uniform(0.95, 1.12))
        self.lines.append(line)

    def photographed(self, low_light: bool = False) -> bytes:
        """The camera's part: perspective, blur, light, noise, JPEG."""
        pixels = np.asarray(self.image.filter(ImageFilter.GaussianBlur(self.random.uniform(0.6, 1.2))))
        height, width = pixels.shape[:2]
        jitter = 0.04
        corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
        moved = corners + np.float32(
            [
                [self.random.uniform(-jitter, jitter) * width, self.random.uniform(-jitter, jitter) * height]
                for _ in range(4)
            ]
        )
        warp = cv2.getPerspectiveTransform(corners, moved)
        pixels = cv2.warpPerspective(pixels, warp, (width, height), borderMode=cv2.BORDER_REFLECT)
        light = np.linspace(1.1, 0.75, width)[None, :, None] * np.linspace(1.0, 0.85, height)[:, None, None]
        if low_light:
            light = light * 0.45
        noisy = pixels.astype(np.float32) * light + self.numpy.normal(0, 6 if not low_light else 10, pixels.shape)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        return encode(image, "JPEG", quality=88)


def _texture(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A background with detail at every scale (walls, wood, fabric), not a flat colour."""
    width, height = size
    total = np.zeros((height, width), np.float32)
    for cells, weight in ((6, 1.0), (24, 0.5), (96, 0.25), (384, 0.12)):
        coarse = rng.random((max(2, cells * height // width), cells)).astype(np.float32)
        total += weight * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    total = (total - total.min()) / (np.ptp(total) + 1e-6)
    tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    return (total[:, :, None] * tint * 200 + 30).astype(np.uint8)


def shop_front(canvas: Canvas) -> None:
    canvas.board((160, 120, 2000, 420), (150, 20, 25))
    canvas.text((260, 170), "老北京炸酱面馆", 160, (250, 230, 150))
    canvas.text((1500, 340), "EST. 1998", 56, (250, 230, 150))
    canvas.board((1880, 520, 2060, 1360), (30, 60, 120))
    canvas.vertical((1910, 540), "正宗手工面", 130, (245, 245, 245))
    canvas.board((180, 560, 1100, 1300), (235, 230, 215))
    for i, line in enumerate(["营业时间 10:00-22:00", "外卖电话 138 0013 8000", "支持微信 支付宝", "WiFi: noodle2024"]):
        canvas.text((220, 600 + i * 120), line, 60)
    canvas.board((1200, 700, 1800, 1000), (250, 250, 250))
    canvas.text((1240, 740), "今日特价", 80, (200, 30, 30))
    canvas.text((1240, 860), "牛肉面 ¥18", 70)
    # Small print on the door.
    canvas.board((1200, 1060, 1840, 1200), (240, 240, 235))
    canvas.text((1220, 1075), "凭小票可开发票", 30)
    canvas.text((1220, 1135), "统一社会信用代码 91110105MA01B2C3D4", 26)


def menu(canvas: Canvas) -> None:
    canvas.board((120, 100, 1320, 1820), (245, 238, 220))
    canvas.text((420, 140), "川菜馆菜单", 110, (120, 20, 20))
    dishes = [
        "宫保鸡丁",
        "麻婆豆腐",
        "鱼香肉丝",
        "回锅肉",
        "水煮牛肉",
        "酸辣土豆丝",
        "夫妻肺片",
        "担担面",
        "红油抄手",
        "蛋炒饭",
    ]
    for i, dish in enumerate(dishes):
        canvas.text((200, 340 + i * 140), dish, 66)
        canvas.text((1000, 340 + i * 140), f"¥{canvas.random.randrange(12, 68)}", 66)
    canvas.text((200, 1700), "所有菜品均可微辣 Mild available", 34)
    canvas.text((200, 1760), "以上价格均含服务费", 28)


def receipt(canvas: Canvas) -> None:
    paper = canvas.sheet((760, 1500), (248, 248, 244))
    paper.text((170, 40), "华联超市购物小票", 56)
    paper.text((40, 140), "单号 20261207-0815", 36)
    items = [
        ("农夫山泉 550ml", "2.00"),
        ("康师傅红烧牛肉面", "4.50"),
        ("伊利纯牛奶 250ml", "3.80"),
        ("卫龙辣条", "5.00"),
    ]
    for i, (item, price) in enumerate(items):
        paper.text((40, 240 + i * 80), item, 40)
        paper.text((600, 240 + i * 80), price, 40)
    paper.text((40, 620), "合计 15.30", 52)
    paper.text((40, 720), "谢谢惠顾 欢迎再次光临", 40)
    paper.text((40, 800), "Thank you for shopping", 36)
    paper.text((40, 880), "地址：北京市海淀区中关村大街1号", 26)
    paper.text((40, 930), "电话：010-62751234", 26)
    canvas.lay(paper, (200, 60), canvas.random.uniform(-12, 12))


def notebook(canvas: Canvas) -> None:
    canvas.board((100, 100, 1340, 1820), (250, 250, 240))
    for y in range(220, 1800, 110):
        canvas.draw.line((120, y + 70, 1320, y + 70), fill=(160, 190, 230), width=3)
    notes = ["周三下午开会", "买牛奶和鸡蛋", "给妈妈打电话", "论文第三章修改", "Deadline Friday", "记得交房租"]
    for i, note in enumerate(notes):
        canvas.handwritten((180, 240 + i * 220), note, 72)
    canvas.handwritten((700, 1640), "周五前交报告", 44)
    canvas.handwritten((700, 1720), "Call Dr. Wang", 44)


def shelf(canvas: Canvas) -> None:
    products = [
        "可口可乐",
        "雪碧",
        "百事可乐",
        "王老吉",
        "红牛",
        "加多宝",
        "元气森林",
        "脉动",
        "尖叫",
        "东方树叶",
        "冰红茶",
        "绿茶",
    ]
    for row in range(3):
        canvas.board((60, 300 + row * 380, 2100, 330 + row * 380), (120, 120, 130))
        for col in range(4):
            name = products[row * 4 + col]
            left, top = 120 + col * 500, 340 + row * 380
            canvas.board((left, top, left + 400, top + 150), (255, 240, 60))
            canvas.text((left + 20, top + 10), name, 54)
            price = f"¥{canvas.random.randrange(2, 9)}.{canvas.random.randrange(10, 99)}"
            canvas.text((left + 20, top + 86), price, 46)
            canvas.text((left + 220, top + 100), f"69{canvas.random.randrange(10**10, 10**11)}", 22)  # barcode digits
    canvas.text((700, 80), "饮料区 Beverages", 90, (240, 240, 240))


def street(canvas: Canvas) -> None:
    signs = [
        ("星巴克咖啡", (40, 90, 40)),
        ("中国银行", (170, 20, 30)),
        ("华为授权体验店", (200, 30, 40)),
        ("7-ELEVEN", (0, 110, 70)),
    ]
    for i, (name, colour) in enumerate(signs):
        left = 60 + (i % 2) * 1060
        top = 120 + (i // 2) * 560
        canvas.board((left, top, left + 980, top + 220), colour)
        canvas.text((left + 50, top + 50), name, 110, (255, 255, 255))
    canvas.board((400, 1160, 1800, 1360), (30, 80, 160))
    canvas.text((440, 1190), "建国路 Jianguo Rd", 100, (255, 255, 255))
    canvas.board((1500, 900, 1900, 990), (20, 20, 30))
    canvas.text((1520, 915), "停车场入口 P", 44, (200, 200, 200))


Layout = Callable[[Canvas], None]

SCENES: list[tuple[str, tuple[int, int], Layout, bool]] = [
    ("shop front", LANDSCAPE, shop_front, False),
    ("menu", PORTRAIT, menu, False),
    ("receipt on a table", PORTRAIT, receipt, False),
    ("notebook, handwritten", PORTRAIT, notebook, False),
    ("drinks shelf", LANDSCAPE, shelf, False),
    ("street at dusk", LANDSCAPE, street, True),
]


def scenes() -> list[Scene]:
    made = []
    for seed, (name, size, layout, low_light) in enumerate(SCENES):
        canvas = Canvas.photo(size, seed)
        layout(canvas)
        made.append(Scene(name, canvas.photographed(low_light), canvas.lines))
    return made
