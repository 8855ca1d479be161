import io

from inventory.catalog import load_catalog

CATALOG_CSV = """sku,name,unit_price,reorder_level,discounts
WID-1,Widget,2.50,20,10:5;50:10;100:15
BOLT-M6,M6 bolt (box of 100),$7.90,5,25:8
NUT-M6,M6 nut (box of 100),4.20,5,
GEAR-12,Gear 12 teeth,"1,250.00",1,
"""


def sample_catalog():
    return load_catalog(io.StringIO(CATALOG_CSV))
