"""A small catalog for ordering tests, with slots dated relative to today (so the
tests do not expire with the demo catalog's dates)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")


def lecture_day(days_ahead: int = 3, today: dt.date | None = None) -> dt.date:
    return (today or dt.datetime.now(ZONE).date()) + dt.timedelta(days=days_ahead)


def write_catalog(directory: Path, *, capacity: int = 10, today: dt.date | None = None) -> Path:
    first, second = lecture_day(3, today), lecture_day(10, today)
    place = f"capacity: {capacity}, location: 二楼会议室"
    text = f"""
community:
  id: testville
  name: 测试社区
  timezone: Asia/Shanghai
  duty_phone: "0773-2800123"
  grids:
    - {{id: g1, name: 第一网格, areas: [1栋, 2栋, 3栋]}}
    - {{id: g2, name: 第二网格, areas: [7栋, 8栋]}}
units:
  - {{id: property, name: 阳光物业, kind: 企业, channels: [{{type: log}}]}}
  - {{id: clinic, name: 社区卫生服务中心, kind: 医疗机构}}
  - {{id: law, name: 共建律师事务所, kind: 两新组织}}
  - {{id: community, name: 测试社区居委会, kind: 社区}}
  - {{id: discipline, name: 街道纪工委, kind: 机关}}
faq:
  - id: office-hours
    questions: [社区几点上班, 居委会什么时候有人, 办事时间是几点]
    answer: 社区居委会周一到周五上午8:30到12:00、下午2:30到5:30办公。
    unit: community
items:
  - id: home-repair
    title: 水电维修
    unit: property
    category: 物业服务
    keywords: [漏水, 水管, 停电, 跳闸, 水龙头]
    grid_level: true
    description: 水管漏水、电路跳闸等家庭水电小修，物业师傅上门。
    replies:
      accept: [师傅今天下午上门，请留意电话]
      complete: [已修好，请试用, 已临时处理，配件到了再来换]
  - id: facility-repair
    title: 公共设施报修
    unit: property
    category: 物业服务
    keywords: [路灯, 电梯, 楼道灯]
    description: 路灯、电梯、楼道灯等公共设施坏了，物业来修。
  - id: health-lecture
    title: 健康知识讲座
    unit: clinic
    category: 健康医疗
    mode: 订单式
    keywords: [健康讲座, 养生知识]
    description: 医生来社区讲养生和慢病管理。
    sessions:
      - {{id: first, start: "{first} 15:00", end: "{first} 16:30", {place}}}
      - {{id: second, start: "{second} 15:00", end: "{second} 16:30", {place}}}
    next_steps: 请按时到二楼会议室，带上医保卡。
  - id: free-clinic
    title: 大型义诊
    unit: clinic
    category: 健康医疗
    mode: 订单式
    keywords: [义诊, 免费看病]
    description: 医院专家来社区免费看病、量血压。
    sessions:
      - {{id: clinic-day, start: "{first} 09:00", end: "{first} 11:30", {place}}}
  - id: legal-consult
    title: 免费法律咨询
    unit: law
    category: 平安法治
    keywords: [法律咨询, 律师, 打官司, 欠薪]
    description: 律师免费解答法律问题。
  - id: law-lecture
    title: 法治讲座
    unit: law
    category: 平安法治
    keywords: [普法, 法律讲座]
    description: 律师给居民讲法律常识。
  - id: corridor-cleanup
    title: 楼道杂物清理
    unit: property
    category: 物业服务
    keywords: [楼道杂物, 堆放杂物]
    form:
      - {{id: what, kind: choice, ask: 堆的是什么？, choices: [纸箱, 旧家具, 电动车]}}
      - {{id: phone, kind: phone}}
  - id: integrity-report
    title: 廉情监督反映
    unit: discipline
    category: 清廉建设
    confidential: true
    keywords: [吃拿卡要, 收红包, 廉情]
    description: 反映工作人员吃拿卡要等问题，只有纪工委能看到。
  - id: noise-report
    title: 噪音扰民反映
    unit: community
    category: 平安法治
    keywords: [噪音, 扰民, 太吵]
    description: 邻居半夜吵闹、装修噪音扰民，社区上门协调。
    form:
      - {{id: building, kind: building}}
      - {{id: phone, kind: phone, required: false}}
      - {{id: notes, kind: notes, required: false}}
  - id: allowance
    title: 高龄津贴申请代办
    unit: community
    category: 为老服务
    mode: 代办式
    keywords: [高龄津贴, 高龄补贴]
    description: 80岁以上老人的高龄津贴，社区帮忙申请。
"""
    path = directory / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def without_unit(source: Path, unit: str, target: Path) -> Path:
    """A copy of a catalog file without ``unit`` and its items (the unit retired)."""
    import yaml

    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["units"] = [u for u in data["units"] if u["id"] != unit]
    data["items"] = [i for i in data["items"] if i["unit"] != unit]
    target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target
