"""The action plan's project ledger as footprints: corridors for linear works, small polygons for buildings.

Names follow the plan's own projects; footprints, money and progress are synthetic. Four projects are drawn
to cross an ecological red line or basic farmland on purpose (a tourism road into 皂幕山, a forest trail in
云勇, a water main and a village belt across cropland), so the compliance review has real findings. The
other footprints are kept off the red lines here and the farmland is later cut back from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
import shapely.affinity

from geoplan.demo.geometry import FloatArray, to_multipolygon, wiggly_path
from geoplan.demo.layout import GENGHE, HECHENG, HILLS, MINGCHENG, YANGHE
from geoplan.demo.partition import Partition
from geoplan.demo.plan_layers import FarmlandDraft
from geoplan.demo.roads import RoadNetwork
from geoplan.demo.sources import Sources
from geoplan.demo.zones import SPONGE_PILOT, Zone, river_frame

REDLINE, FARMLAND = "redline", "farmland"


@dataclass(frozen=True)
class Context:
    """Everything a footprint may be placed against (EPSG:4547)."""

    src: Sources
    part: Partition
    roads: RoadNetwork
    hills: shapely.MultiPolygon
    renewal: list[Zone]
    sponge: list[Zone]
    farmland: FarmlandDraft
    rng: np.random.Generator
    inner: shapely.Geometry  # the district shrunk a little: footprints stay off the outline
    placed: list[shapely.Geometry]  # footprints so far (appended to while building)

    @property
    def taken(self) -> shapely.Geometry:
        return shapely.union_all(self.placed) if self.placed else shapely.Polygon()

    def seat(self, code: str) -> FloatArray:
        return np.asarray(self.src.seats[code])

    def grid_node_near(self, code: str, xy: FloatArray) -> int:
        grid = self.roads.grid_nodes[code]
        return int(grid[np.argmin(np.hypot(*(self.roads.nodes[grid] - xy).T))])


@dataclass(frozen=True)
class ProjectDef:
    name: str
    task_area: str
    category: str
    unit: str
    invest: tuple[float, float]  # 万元
    shape: Callable[[Context], shapely.Geometry]
    conflict: str | None = None  # REDLINE / FARMLAND: crosses it on purpose


@dataclass(frozen=True)
class Project:
    definition: ProjectDef
    geometry: shapely.MultiPolygon


def corridor(points: FloatArray, width: float, ctx: Context, *, bend: float = 0.02) -> shapely.Geometry:
    """A linear work: a gently bent centre line, `width` metres wide."""
    line = wiggly_path(np.asarray(points, dtype=float), ctx.rng, step=150.0, amplitude=bend)
    return shapely.LineString(line).buffer(width / 2, cap_style="flat", join_style="round")


def road_corridor(a: int, b: int, width: float, ctx: Context) -> shapely.Geometry:
    """A linear work along the existing streets between two road nodes."""
    path = ctx.roads.path(a, b)
    return shapely.LineString(ctx.roads.nodes[path]).buffer(width / 2, cap_style="flat", join_style="round")


def box(center: FloatArray, w: float, h: float, angle: float) -> shapely.Geometry:
    """A building plot: a w x h rectangle turned by `angle` degrees."""
    rect = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
    rect = shapely.affinity.rotate(rect, angle, origin=(0, 0))
    return shapely.affinity.translate(rect, float(center[0]), float(center[1]))


def plot(code: str, dist: float, w: float, h: float) -> Callable[[Context], shapely.Geometry]:
    """A building plot by a street corner about `dist` metres from a town seat, in a random direction.

    The first corner (nearest the target spot) where the plot fits inside the district and clear of the
    footprints placed so far wins, so buildings never straddle the river bank or each other.
    """

    def make(ctx: Context) -> shapely.Geometry:
        ang = ctx.rng.uniform(0, 2 * np.pi)
        at = ctx.seat(code) + dist * np.array([np.cos(ang), np.sin(ang)])
        grid = ctx.roads.grid_nodes[code]
        order = grid[np.argsort(np.hypot(*(ctx.roads.nodes[grid] - at).T), kind="stable")]
        turn = float(ctx.rng.uniform(-10, 10))
        taken = ctx.taken
        first = None
        for node in order[:200]:
            corner = ctx.roads.nodes[node] + np.array([w / 2 + 12.0, h / 2 + 12.0])  # set back from the corner
            shape = box(corner, w, h, turn)
            first = shape if first is None else first
            if ctx.inner.contains(shape) and not taken.intersects(shape):
                return shape
        assert first is not None
        return first

    return make


def zone(name: str, *, sponge: bool = False) -> Callable[[Context], shapely.Geometry]:
    def make(ctx: Context) -> shapely.Geometry:
        for z in ctx.sponge if sponge else ctx.renewal:
            if z.name == name:
                return z.geometry
        raise ValueError(f"no zone {name}")

    return make


def _tram(ctx: Context) -> shapely.Geometry:
    return road_corridor(ctx.roads.seat_node[HECHENG], ctx.roads.seat_node[YANGHE], 30.0, ctx)


def _heyang_avenue(ctx: Context) -> shapely.Geometry:
    a, b = ctx.seat(HECHENG), ctx.seat(YANGHE)
    start = ctx.roads.nodes[ctx.grid_node_near(HECHENG, a + np.array([-1_500.0, -900.0]))]
    end = ctx.roads.nodes[ctx.grid_node_near(YANGHE, b + np.array([900.0, -300.0]))]
    mid = (start + end) / 2 + np.array([0.0, -700.0])
    return corridor(np.array([start, mid, end]), 60.0, ctx)


def _hexiang_north(ctx: Context) -> shapely.Geometry:
    rf = river_frame(ctx.src)
    grid = ctx.roads.grid_nodes[HECHENG]
    top = grid[np.argmax(ctx.roads.nodes[grid] @ rf.along)]
    start = ctx.roads.nodes[top]
    return corridor(
        np.array([start, start + 2_800.0 * rf.along - 500.0 * rf.to_river / np.hypot(*rf.to_river)]), 40.0, ctx
    )


def _water_plant(ctx: Context) -> FloatArray:
    rf = river_frame(ctx.src)
    return rf.seat + 2_600.0 * rf.along + 0.6 * rf.to_river


def _farm_point(ctx: Context, near: FloatArray) -> FloatArray:
    """A point inside the farmland patch nearest to `near` (not one of those reaching into the boundary)."""
    best, best_d = None, np.inf
    for g, poke in zip(ctx.farmland.geoms, ctx.farmland.in_boundary, strict=True):
        if poke:
            continue
        d = g.distance(shapely.Point(near))
        if d < best_d:
            best, best_d = g, d
    if best is None:
        return near
    p = best.point_on_surface()
    return np.array([p.x, p.y])


def _water_main(ctx: Context) -> shapely.Geometry:
    yh, mc = ctx.seat(YANGHE), ctx.seat(MINGCHENG)
    f1 = _farm_point(ctx, yh + (mc - yh) / 3 + np.array([0.0, -1_200.0]))
    f2 = _farm_point(ctx, yh + 2 * (mc - yh) / 3 + np.array([0.0, -1_000.0]))
    pts = np.array([_water_plant(ctx), ctx.roads.nodes[ctx.roads.seat_node[YANGHE]], f1, f2, mc])
    return corridor(pts, 30.0, ctx, bend=0.0)


def _plant_extension(ctx: Context) -> shapely.Geometry:
    return box(_water_plant(ctx) - 0.25 * river_frame(ctx.src).to_river, 260.0, 180.0, 20.0)


def _port(ctx: Context) -> shapely.Geometry:
    rf = river_frame(ctx.src)
    at = rf.seat - 2_200.0 * rf.along + 0.8 * rf.to_river
    angle = float(np.degrees(np.arctan2(rf.along[1], rf.along[0])))
    return box(at, 900.0, 380.0, angle)


def _logistics(ctx: Context) -> shapely.Geometry:
    rf = river_frame(ctx.src)
    at = rf.seat - 2_300.0 * rf.along - 0.2 * rf.to_river
    angle = float(np.degrees(np.arctan2(rf.along[1], rf.along[0])))
    return box(at, 420.0, 260.0, angle)


def _embankment(ctx: Context) -> shapely.Geometry:
    rf = river_frame(ctx.src)
    u = rf.to_river / np.hypot(*rf.to_river)
    bank = rf.seat + rf.to_river - 90.0 * u
    pts = np.array([bank + t * rf.along for t in np.linspace(-1_200.0, 3_000.0, 12)])
    return corridor(pts, 40.0, ctx, bend=0.0)


def _riverside_park(ctx: Context) -> shapely.Geometry:
    rf = river_frame(ctx.src)
    u = rf.to_river / np.hypot(*rf.to_river)
    bank = rf.seat + rf.to_river - 200.0 * u
    pts = np.array([bank + t * rf.along for t in np.linspace(400.0, 3_200.0, 10)])
    return corridor(pts, 50.0, ctx, bend=0.0)


def _school(ctx: Context) -> shapely.Geometry:
    pilot = zone(SPONGE_PILOT, sponge=True)(ctx)
    c = pilot.point_on_surface()
    return box(np.array([c.x, c.y]), 180.0, 140.0, 12.0)


def _talent_community(ctx: Context) -> shapely.Geometry:
    pilot = zone(SPONGE_PILOT, sponge=True)(ctx)
    c = pilot.centroid
    shift = np.array([c.x, c.y]) + 450.0 * river_frame(ctx.src).along
    return box(shift, 320.0, 220.0, 25.0)


def _xijiang_plan(ctx: Context) -> shapely.Geometry:
    """The 西江新城 planning area: the sponge pilot and its surroundings inside 荷城."""
    c = zone(SPONGE_PILOT, sponge=True)(ctx).centroid
    town = ctx.part.towns[ctx.part.town_codes.index(HECHENG)]
    return shapely.intersection(shapely.Point(c.x, c.y).buffer(1_200.0, quad_segs=16), town)


def _stream(ctx: Context) -> shapely.Geometry:
    bends = np.array([[-1_800.0, -2_600.0], [-500.0, -1_400.0], [1_200.0, -1_900.0]])
    return corridor(ctx.seat(YANGHE) + bends, 30.0, ctx, bend=0.06)


def _facades(ctx: Context) -> shapely.Geometry:
    seat = ctx.seat(HECHENG)
    a = ctx.grid_node_near(HECHENG, seat + np.array([-2_200.0, 600.0]))
    return road_corridor(ctx.roads.seat_node[HECHENG], a, 40.0, ctx)


def _back_lanes(ctx: Context) -> shapely.Geometry:
    seat = ctx.seat(HECHENG)
    a = ctx.grid_node_near(HECHENG, seat + np.array([-900.0, 1_200.0]))
    b = ctx.grid_node_near(HECHENG, seat + np.array([-1_800.0, 2_000.0]))
    return road_corridor(a, b, 14.0, ctx)


def _gateways(ctx: Context) -> shapely.Geometry:
    grid = ctx.roads.grid_nodes[HECHENG]
    nodes = ctx.roads.nodes[grid]
    picks = [grid[np.argmin(nodes[:, 0])], grid[np.argmin(nodes[:, 1])], grid[np.argmax(nodes[:, 1])]]
    return shapely.union_all([box(ctx.roads.nodes[p], 150.0, 80.0, 0.0) for p in picks])


def _parking(ctx: Context) -> shapely.Geometry:
    parts = []
    for code, dist in ((HECHENG, 800.0), (HECHENG, 1_900.0), (YANGHE, 600.0), (YANGHE, 1_000.0)):
        parts.append(plot(code, dist, 80.0, 50.0)(ctx))
    return shapely.union_all(parts)


def _village_belt(ctx: Context) -> shapely.Geometry:
    codes = ctx.part.villages["town_code"].to_numpy()
    types = ctx.part.villages["type"].to_numpy()
    vill = np.flatnonzero((codes == MINGCHENG) & (types == "village"))
    hubs = ctx.part.hubs[vill]
    start = int(np.argmin(hubs[:, 1]))  # the southernmost village, then its two nearest neighbours
    order = np.argsort(np.hypot(*(hubs - hubs[start]).T), kind="stable")[:3]
    stops = ctx.roads.nodes[ctx.roads.hub_node[vill[order]]]
    farm = _farm_point(ctx, (stops[0] + stops[1]) / 2)
    return corridor(np.array([stops[0], farm, stops[1], stops[2]]), 40.0, ctx, bend=0.0)


def _tourism_road(ctx: Context) -> shapely.Geometry:
    grid = ctx.roads.grid_nodes[GENGHE]
    west = ctx.roads.nodes[grid[np.argmin(ctx.roads.nodes[grid, 0])]]
    peak = np.array([HILLS[0].x, HILLS[0].y])
    mid = (west + peak) / 2 + np.array([0.0, 900.0])
    return corridor(np.array([west, mid, peak]), 24.0, ctx, bend=0.03)


def _forest_trail(ctx: Context) -> shapely.Geometry:
    hill = HILLS[2]
    t = np.linspace(0.2, 1.6 * np.pi, 24)
    pts = np.column_stack([hill.x + 900.0 * np.cos(t), hill.y + 700.0 * np.sin(t)])
    return corridor(pts, 12.0, ctx, bend=0.0)


def _blob_at(code: str, offset: tuple[float, float], radius: float) -> Callable[[Context], shapely.Geometry]:
    def make(ctx: Context) -> shapely.Geometry:
        c = ctx.seat(code) + np.asarray(offset)
        return shapely.Point(c).buffer(radius, quad_segs=12)

    return make


def _village_site(prefix: str, radius: float) -> Callable[[Context], shapely.Geometry]:
    def make(ctx: Context) -> shapely.Geometry:
        names = ctx.part.villages["village_name"].to_numpy()
        v = next(i for i, n in enumerate(names) if str(n).startswith(prefix))
        hub = ctx.roads.nodes[ctx.roads.hub_node[v]]
        return shapely.intersection(shapely.Point(hub).buffer(radius, quad_segs=12), ctx.part.village_geoms[v])

    return make


def _mc_gh_road(ctx: Context) -> shapely.Geometry:
    return road_corridor(ctx.roads.seat_node[MINGCHENG], ctx.roads.seat_node[GENGHE], 40.0, ctx)


PROJECTS: tuple[ProjectDef, ...] = (
    # 规划建设科学化
    ProjectDef("西江新城控制性详细规划修编", "规划建设科学化", "规划编制", "区自然资源局", (150, 400), _xijiang_plan),
    ProjectDef(
        "杨和镇产业园区规划",
        "规划建设科学化",
        "规划编制",
        "区自然资源局",
        (80, 250),
        _blob_at(YANGHE, (1_300.0, -700.0), 700.0),
    ),
    ProjectDef(
        "更合镇镇区详细规划",
        "规划建设科学化",
        "规划编制",
        "区自然资源局",
        (60, 200),
        _blob_at(GENGHE, (0.0, 0.0), 800.0),
    ),
    # 人居环境绿色化
    ProjectDef(
        "西江新城海绵城市示范区",
        "人居环境绿色化",
        "海绵城市",
        "区住建局",
        (20_000, 60_000),
        zone(SPONGE_PILOT, sponge=True),
    ),
    ProjectDef(
        "更合镇污水处理厂提标",
        "人居环境绿色化",
        "污水处理",
        "更合镇人民政府",
        (3_000, 8_000),
        plot(GENGHE, 1_300.0, 180.0, 120.0),
    ),
    ProjectDef("杨和镇黑臭水体整治工程", "人居环境绿色化", "水环境治理", "区水利局", (2_000, 6_000), _stream),
    ProjectDef(
        "高明区城市公园提升工程",
        "人居环境绿色化",
        "园林绿化",
        "区城管执法局",
        (1_500, 5_000),
        _blob_at(HECHENG, (-2_300.0, 1_400.0), 280.0),
    ),
    ProjectDef(
        "明城镇垃圾转运站",
        "人居环境绿色化",
        "环卫设施",
        "明城镇人民政府",
        (300, 900),
        plot(MINGCHENG, 900.0, 60.0, 40.0),
    ),
    # 城市形象特色化
    ProjectDef(
        "沿江路以东旧区改造", "城市形象特色化", "城市更新", "区自然资源局", (30_000, 90_000), zone("沿江路以东旧区")
    ),
    ProjectDef("三洲旧区改造", "城市形象特色化", "城市更新", "荷城街道办事处", (15_000, 50_000), zone("三洲旧区")),
    ProjectDef("西江新城滨江景观带", "城市形象特色化", "景观提升", "区住建局", (4_000, 12_000), _riverside_park),
    ProjectDef("城市出入口景观提升工程", "城市形象特色化", "景观提升", "区城管执法局", (800, 2_500), _gateways),
    ProjectDef("荷城街道立面整治工程", "城市形象特色化", "街区整治", "荷城街道办事处", (1_000, 3_500), _facades),
    # 基础设施一体化
    ProjectDef("现代有轨电车示范线", "基础设施一体化", "轨道交通", "区交通运输局", (150_000, 300_000), _tram),
    ProjectDef("荷杨大道", "基础设施一体化", "道路交通", "区交通运输局", (60_000, 120_000), _heyang_avenue),
    ProjectDef("荷香路北延线", "基础设施一体化", "道路交通", "区交通运输局", (8_000, 20_000), _hexiang_north),
    ProjectDef(
        "高明水厂扩建配套输水管网工程",
        "基础设施一体化",
        "供水工程",
        "区水利局",
        (12_000, 30_000),
        _water_main,
        FARMLAND,
    ),
    ProjectDef("高明水厂扩建工程", "基础设施一体化", "供水工程", "区水利局", (15_000, 35_000), _plant_extension),
    ProjectDef("高明港区", "基础设施一体化", "港口航运", "区交通运输局", (40_000, 90_000), _port),
    ProjectDef("西江堤防加固工程", "基础设施一体化", "水利工程", "区水利局", (6_000, 15_000), _embankment),
    ProjectDef("明城至更合道路升级改造", "基础设施一体化", "道路交通", "区交通运输局", (20_000, 45_000), _mc_gh_road),
    # 镇村发展现代化
    ProjectDef(
        "明城镇美丽乡村示范带", "镇村发展现代化", "乡村振兴", "明城镇人民政府", (3_000, 9_000), _village_belt, FARMLAND
    ),
    ProjectDef(
        "更合镇生态旅游公路", "镇村发展现代化", "旅游公路", "区交通运输局", (8_000, 18_000), _tourism_road, REDLINE
    ),
    ProjectDef("云勇林场森林步道", "镇村发展现代化", "生态旅游", "区自然资源局", (800, 2_000), _forest_trail, REDLINE),
    ProjectDef(
        "对川村乡村振兴示范村",
        "镇村发展现代化",
        "乡村振兴",
        "杨和镇人民政府",
        (1_500, 4_000),
        _village_site("对川", 450.0),
    ),
    ProjectDef(
        "罗西村旧村居改造", "镇村发展现代化", "城市更新", "荷城街道办事处", (2_000, 6_000), zone("罗西村旧村居")
    ),
    ProjectDef(
        "更合镇农业产业园",
        "镇村发展现代化",
        "现代农业",
        "更合镇人民政府",
        (5_000, 15_000),
        _village_site("白石", 600.0),
    ),
    # 城市管理精细化
    ProjectDef(
        "智慧城管平台", "城市管理精细化", "智慧城管", "区城管执法局", (1_200, 3_000), plot(HECHENG, 600.0, 50.0, 40.0)
    ),
    ProjectDef("荷城街道背街小巷整治", "城市管理精细化", "街区整治", "荷城街道办事处", (600, 1_800), _back_lanes),
    ProjectDef("智慧停车场建设", "城市管理精细化", "停车设施", "区城管执法局", (2_000, 6_000), _parking),
    ProjectDef(
        "杨和镇农贸市场周边环境整治",
        "城市管理精细化",
        "市容整治",
        "杨和镇人民政府",
        (200, 700),
        plot(YANGHE, 400.0, 90.0, 70.0),
    ),
    # 公共服务优质化
    ProjectDef("西江新城学校", "公共服务优质化", "教育设施", "区教育局", (18_000, 35_000), _school),
    ProjectDef(
        "区居家养老服务中心",
        "公共服务优质化",
        "养老设施",
        "区民政局",
        (1_500, 4_000),
        plot(HECHENG, 1_100.0, 60.0, 45.0),
    ),
    ProjectDef(
        "区粮食储备库",
        "公共服务优质化",
        "粮食储备",
        "区发展和改革局",
        (6_000, 15_000),
        plot(HECHENG, 2_600.0, 220.0, 160.0),
    ),
    ProjectDef(
        "高明区文化馆新馆",
        "公共服务优质化",
        "文化设施",
        "区文广旅体局",
        (8_000, 20_000),
        plot(HECHENG, 1_500.0, 120.0, 90.0),
    ),
    ProjectDef(
        "荷城街道农贸市场升级改造",
        "公共服务优质化",
        "农贸市场",
        "荷城街道办事处",
        (800, 2_500),
        plot(HECHENG, 700.0, 90.0, 70.0),
    ),
    ProjectDef(
        "杨和镇中心小学扩建",
        "公共服务优质化",
        "教育设施",
        "区教育局",
        (5_000, 12_000),
        plot(YANGHE, 900.0, 150.0, 110.0),
    ),
    ProjectDef(
        "明城镇卫生院改扩建",
        "公共服务优质化",
        "医疗卫生",
        "区卫生健康局",
        (3_000, 8_000),
        plot(MINGCHENG, 500.0, 100.0, 70.0),
    ),
    ProjectDef(
        "更合镇文化站提升工程",
        "公共服务优质化",
        "文化设施",
        "区文广旅体局",
        (300, 900),
        plot(GENGHE, 400.0, 60.0, 50.0),
    ),
    ProjectDef(
        "区人民医院新院区",
        "公共服务优质化",
        "医疗卫生",
        "区卫生健康局",
        (60_000, 120_000),
        plot(HECHENG, 3_200.0, 250.0, 180.0),
    ),
    # 城市发展国际化
    ProjectDef(
        "西江新城国际人才社区",
        "城市发展国际化",
        "人才社区",
        "区人力资源和社会保障局",
        (10_000, 25_000),
        _talent_community,
    ),
    ProjectDef(
        "高明区国际商务中心",
        "城市发展国际化",
        "商务设施",
        "区商务局",
        (20_000, 50_000),
        plot(HECHENG, 1_800.0, 150.0, 120.0),
    ),
    ProjectDef(
        "沧江工业园国际合作产业园",
        "城市发展国际化",
        "产业园区",
        "区工业和信息化局",
        (30_000, 80_000),
        _blob_at(MINGCHENG, (1_600.0, -900.0), 650.0),
    ),
    ProjectDef("高明港区国际物流园", "城市发展国际化", "物流园区", "区商务局", (15_000, 40_000), _logistics),
)


def build_project_footprints(ctx: Context) -> list[Project]:
    """Each project's footprint, clipped to the district; unintended red-line overlaps are trimmed away."""
    inner = ctx.inner
    keep_off = ctx.hills.buffer(30.0) if not ctx.hills.is_empty else shapely.Polygon()
    out = []
    for d in PROJECTS:
        geom = shapely.intersection(d.shape(ctx), inner)
        if d.conflict != REDLINE and not keep_off.is_empty and geom.intersects(keep_off):
            geom = shapely.difference(geom, keep_off)
        mp = to_multipolygon(geom)
        mp = shapely.MultiPolygon([p for p in mp.geoms if p.area >= 50.0])
        if mp.is_empty:
            raise ValueError(f"project {d.name} has no footprint inside the district")
        out.append(Project(d, mp))
        ctx.placed.append(mp)
    return out
